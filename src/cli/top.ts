/**
 * `popcorn top`: a live view of the running node — kernels with their CPU use and run queue,
 * processes by CPU, messages per second, recent migrations — redrawn in place every interval;
 * `q` (or Ctrl-C) quits. When stdout is not a terminal it prints one plain snapshot and returns.
 * Each refresh is one `observe` request on the control socket (src/node/observer.ts).
 */

import { controlRequest } from '../node/control-client.js';
import type { EventView, Snapshot } from '../node/observer.js';
import { formatBytes, table } from './ps.js';

export interface TopOptions {
  iterations?: number;
  /** ms between refreshes. */
  interval?: number;
}

type View = Omit<Snapshot, 'stats'>;

const CLEAR = '\x1b[H\x1b[2J';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

export async function topCommand(options: TopOptions): Promise<number> {
  const interval = options.interval ?? 1000;
  if (process.stdout.isTTY !== true) {
    // Rates need two samples: the first sets the baseline.
    await observe();
    await delay(interval);
    process.stdout.write(render(await observe(), Infinity));
    return 0;
  }
  return live(interval, options.iterations ?? Infinity);
}

async function live(interval: number, iterations: number): Promise<number> {
  let quit = false;
  let wake: (() => void) | undefined;
  const onKey = (key: Buffer): void => {
    if (key.includes(0x71) || key.includes(0x03)) { // q, Ctrl-C (raw mode: no SIGINT)
      quit = true;
      wake?.();
    }
  };
  const stdin = process.stdin;
  if (stdin.isTTY) stdin.setRawMode(true);
  stdin.on('data', onKey);
  process.stdout.write(HIDE_CURSOR);
  try {
    for (let i = 0; i < iterations && !quit; i++) {
      const view = await observe();
      process.stdout.write(CLEAR + render(view, process.stdout.rows ?? 24));
      if (i + 1 < iterations) await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, interval);
      });
    }
  } finally {
    process.stdout.write(`${SHOW_CURSOR}\n`);
    stdin.off('data', onKey);
    if (stdin.isTTY) stdin.setRawMode(false);
    stdin.pause();
  }
  return 0;
}

async function observe(): Promise<View> {
  return (await controlRequest({ op: 'observe' })).snapshot;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

const percent = (fraction: number): string => (fraction * 100).toFixed(1);

/** One screen: `rows` bounds the process list so the frame fits the terminal. */
export function render(view: View, rows: number): string {
  const busy = view.kernels.reduce((sum, k) => sum + k.cpu, 0);
  const msgs = view.kernels.reduce((sum, k) => sum + k.msgs_per_s, 0);
  const live = view.processes.filter((p) => p.state !== 'zombie').length;
  const head = `popcorn top — node ${view.node}, ${view.kernels.length} kernels, ${live} processes, CPU ${percent(busy)}%, ${Math.round(msgs)} msgs/s\n\n`;
  const kernels = table(['KERNEL', 'NODE', 'CPU%', 'RUNQ', 'LOAD', 'PROCS', 'MSGS/S', 'MIG_IN', 'MIG_OUT'], view.kernels.map((k) => [
    String(k.index), String(k.node), percent(k.cpu), String(k.run_queue), String(k.load), String(k.processes), String(Math.round(k.msgs_per_s)), String(k.migrations_in), String(k.migrations_out),
  ]));
  const migrations = view.events.filter((e) => e.kind === 'migrate').slice(-5);
  const tail = `\nRECENT MIGRATIONS\n${migrations.length === 0 ? '(none)\n' : migrations.map((e) => describeMigration(e, view)).join('')}`;
  const room = Math.max(1, rows - kernels.split('\n').length - tail.split('\n').length - 5);
  const byCpu = [...view.processes].sort((a, b) => b.cpu - a.cpu || b.cpu_ms - a.cpu_ms).slice(0, room);
  const processes = table(['PID', 'KERNEL', 'STATE', 'CPU%', 'CPU_MS', 'MEMORY', 'COMMAND'], byCpu.map((p) => [
    String(p.pid), String(p.kernel), p.state, percent(p.cpu), p.cpu_ms.toFixed(0), formatBytes(p.memory_bytes), p.command,
  ]));
  return `${head}${kernels}\n${processes}${tail}`;
}

function describeMigration(e: EventView, view: View): string {
  const from = view.kernels.find((k) => k.endpoint === e.a)?.index ?? e.a;
  const time = new Date(e.at).toISOString().slice(11, 23);
  return `${time}  pid ${e.pid}  kernel ${from} → ${e.kernel}  ${(e.b / 1000).toFixed(2)} ms\n`;
}
