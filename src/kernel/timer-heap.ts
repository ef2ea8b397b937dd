/**
 * A binary min-heap of deadlines: the kernel's sleeping processes ordered by wake-up time, so the
 * idle loop knows how long it may sleep and the scheduler finds due processes in O(log n).
 */

interface Entry<T> {
  at: number;
  item: T;
}

export class TimerHeap<T> {
  private readonly heap: Entry<T>[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** The earliest deadline, or Infinity when empty. */
  get next(): number {
    return this.heap.length === 0 ? Infinity : this.heap[0].at;
  }

  push(at: number, item: T): void {
    this.heap.push({ at, item });
    this.up(this.heap.length - 1);
  }

  /** Remove and return every item whose deadline is ≤ now, earliest first. */
  popDue(now: number): T[] {
    const due: T[] = [];
    while (this.heap.length > 0 && this.heap[0].at <= now) due.push(this.pop());
    return due;
  }

  /** Remove a specific item (a process woken before its deadline). */
  remove(item: T): boolean {
    const i = this.heap.findIndex((e) => e.item === item);
    if (i < 0) return false;
    const last = this.heap.pop() as Entry<T>;
    if (i < this.heap.length) {
      this.heap[i] = last;
      this.down(i);
      this.up(i);
    }
    return true;
  }

  private pop(): T {
    const top = this.heap[0];
    const last = this.heap.pop() as Entry<T>;
    if (this.heap.length > 0) {
      this.heap[0] = last;
      this.down(0);
    }
    return top.item;
  }

  private up(i: number): void {
    const h = this.heap;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent].at <= h[i].at) break;
      [h[parent], h[i]] = [h[i], h[parent]];
      i = parent;
    }
  }

  private down(i: number): void {
    const h = this.heap;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < h.length && h[l].at < h[m].at) m = l;
      if (r < h.length && h[r].at < h[m].at) m = r;
      if (m === i) return;
      [h[m], h[i]] = [h[i], h[m]];
      i = m;
    }
  }
}
