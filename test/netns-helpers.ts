/**
 * A network of the test's own for cluster tests under real network faults: every node runs in a
 * network namespace of its own, and every byte between two nodes crosses a TCP relay in the test
 * process, which can delay it, while nftables in each namespace drops packets at random.
 *
 *   root namespace (the test)                 namespace popcorn-PID-i (node i)
 *   pcXh<i> 198.A.B.(4i+1)/30  <--- veth --->  pcXn<i> 198.A.B.(4i+2)/30, default route via .(4i+1)
 *     relay listeners, one per other node j      the node listens on 198.A.B.(4i+2):7300
 *
 * A node in namespace i connects to node j's listen address, 198.A.B.(4j+2):7300, as any node
 * does; an nftables DNAT rule in namespace i sends that connection to the relay listener (i→j)
 * on 198.A.B.(4i+1), which connects on to node j through j's veth and holds each chunk it
 * reads, in either direction, `delayMs` before it writes it on (and, after setRate(), no faster
 * than a given rate: a slow link). The root namespace does not forward packets: the relay is the
 * only way from one namespace to another. Each namespace drops `lossPercent` % of the packets it
 * receives on its veth (`numgen random mod 100 < P drop`, with a counter, so a test can show that
 * packets were dropped), which TCP then retransmits. Taking a host-side veth down partitions its
 * node off; setting it up heals.
 *
 * The machine has no netem (sch_netem is not built), hence the relay for delay.
 *
 * Addresses: one /24 of 198.18.0.0/15 (RFC 2544's range for network tests), chosen at random
 * among those no address of the root namespace is in; nothing else is ever configured. Names
 * carry the test process's pid (namespaces popcorn-PID-i, veths pc<pid in base 36>h<i>), so a
 * later run removes what a run killed outright left behind (its pid is gone), and never touches
 * a live run's.
 */

import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TEST_CACHE, popcorn, sleep, type RunResult } from './cli-helpers.js';
import type { Child } from './child.js';
import { startSession, type Session } from './cluster-helpers.js';
import { isAlive, nodeUp, startNode, writeSecret } from './cluster-node.js';

/** The port every node listens on, in its own namespace. */
export const NODE_PORT = 7300;
const NS_PREFIX = 'popcorn-';
/** The relay stops reading a direction while more than this waits in it (held or unsent). */
const RELAY_HIGH_WATER = 4 << 20;

/**
 * Why the netns tests cannot run here, or undefined if they can: they need Linux, root, `ip
 * netns`, nftables, and a kernel that lets us create a namespace with NAT and a random-drop rule
 * (a container may forbid it). Creates and removes a probe namespace.
 */
export function netnsSkipReason(): string | undefined {
  if (process.platform !== 'linux') return 'network namespaces are Linux-only';
  if (process.getuid?.() !== 0) return 'needs root to create network namespaces, veth pairs and nftables rules (run as root, as CI does)';
  const list = spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' });
  if (list.error !== undefined || list.status !== 0) return `\`ip netns\` is unavailable (${list.error?.message ?? list.stderr.trim()}); install iproute2`;
  const nft = spawnSync('nft', ['--version'], { encoding: 'utf8' });
  if (nft.error !== undefined || nft.status !== 0) return `nft is unavailable (${nft.error?.message ?? nft.stderr.trim()}); apt-get install nftables`;
  const probe = `${NS_PREFIX}probe-${process.pid}`;
  const add = spawnSync('ip', ['netns', 'add', probe], { encoding: 'utf8' });
  if (add.status !== 0) return `cannot create a network namespace: ${add.stderr.trim() || add.error?.message}`;
  try {
    const rules = spawnSync('ip', ['netns', 'exec', probe, 'nft', '-f', '-'], {
      encoding: 'utf8',
      input: 'table ip probe {\n chain o { type nat hook output priority -100; policy accept; }\n chain i { type filter hook input priority 0; policy accept; numgen random mod 100 < 5 counter drop; }\n}\n',
    });
    if (rules.status !== 0) return `nftables NAT or numgen is unavailable in a namespace: ${rules.stderr.trim() || rules.error?.message}`;
  } finally {
    spawnSync('ip', ['netns', 'del', probe]);
  }
  return undefined;
}

/** Run a command; throws with its stderr if it fails. */
function sh(command: string, args: string[], input?: string): string {
  const r = spawnSync(command, args, { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  if (r.error !== undefined) throw r.error;
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${String(r.status)}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** The same, ignoring failure (cleanup). */
function quiet(command: string, args: string[]): void {
  spawnSync(command, args, { stdio: 'ignore' });
}

/** Namespaces and host-side veths a run left behind when it was killed (its pid is gone). */
function sweepStale(): void {
  for (const line of sh('ip', ['netns', 'list']).split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const m = /^popcorn-(\d+)-\d+$/.exec(name);
    if (m === null || isAlive(Number(m[1]))) continue;
    for (const pid of spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // gone already
      }
    }
    quiet('ip', ['netns', 'del', name]);
  }
  for (const line of sh('ip', ['-o', 'link', 'show']).split('\n')) {
    const m = /^\d+: (pc([0-9a-z]+)h\d+)[@:]/.exec(line);
    if (m !== null && !isAlive(parseInt(m[2] as string, 36))) quiet('ip', ['link', 'del', m[1] as string]);
  }
}

/** A /24 of 198.18.0.0/15 that no address of the root namespace is in: "198.A.B". */
function freeBlock(): string {
  const used = new Set<string>();
  for (const m of sh('ip', ['-o', '-4', 'addr', 'show']).matchAll(/inet (\d+\.\d+\.\d+)\.\d+/g)) used.add(m[1] as string);
  for (let attempt = 0; attempt < 100; attempt++) {
    const block = Math.floor(Math.random() * 512);
    const prefix = `198.${18 + (block >> 8)}.${block & 255}`;
    if (!used.has(prefix)) return prefix;
  }
  throw new Error('no free /24 in 198.18.0.0/15');
}

/** A node of the lab: `popcorn boot --foreground` in a namespace, driven by `popcorn` from outside. */
export interface LabNode {
  /** Its node number in the cluster. */
  readonly node: number;
  /** The namespace it runs in (the lab's index). */
  readonly ns: number;
  readonly listen: string;
  /** Its runtime directory (POPCORN_RUNTIME_DIR): the control socket, reachable from any namespace. */
  readonly dir: string;
  readonly pid: number;
  /** Run `popcorn ARGS` against this node. */
  cli(args: string[], options?: { input?: string; timeoutMs?: number }): Promise<RunResult>;
  /** Start `popcorn ARGS` against this node without waiting for it (stdin closed). */
  session(args: string[]): Session;
  /** Start `popcorn ARGS` against this node with its stdin ours to write, and end. */
  feed(args: string[]): Feed;
  /** Everything the node wrote (its log). */
  log(): string;
  /** Resolves with performance.now() at the moment `pattern` appeared in its log (or at once). */
  waitForLog(pattern: RegExp, timeoutMs: number): Promise<number>;
  alive(): boolean;
  /** Resolves when its process has exited. */
  readonly exited: Promise<void>;
}

/** A `popcorn` command whose stdin the test writes. */
export interface Feed extends Session {
  /** Write `data` to its stdin; resolves once it was handed to the pipe. */
  write(data: string | Buffer): Promise<void>;
  /** Close its stdin. */
  end(): void;
}

export interface LabOptions {
  namespaces: number;
  /** How long the relay holds each chunk, each way. */
  delayMs: number;
  /** The share of packets each namespace drops on receipt, in %. */
  lossPercent: number;
}

interface Relay {
  server: net.Server;
  port: number;
}

export class NetLab {
  /** Temp dir: the secret file and the nodes' runtime directories. */
  readonly root: string;
  readonly secretFile: string;
  private readonly tag: string;
  private readonly relays = new Map<string, Relay>();
  private readonly sockets = new Set<net.Socket>();
  private readonly children = new Set<Child>();
  private readonly sessions = new Set<ChildProcess>();
  /** Bytes read from namespace i's side and forwarded toward namespace j: flows[i][j]. */
  private readonly flows: number[][];
  private readonly watchers: { from: number; to: number; bytes: number; fire: () => void }[] = [];
  /** The longest this process's event loop (the relay) was late, in ms, since resetStall(). */
  private stall = 0;
  private readonly stallTimer: NodeJS.Timeout;
  private nodeDirs = 0;
  private closed = false;
  /** Bytes per second each relayed direction may carry; 0: as fast as it can. */
  private rate = 0;

  private constructor(private readonly prefix: string, private readonly options: LabOptions) {
    this.root = mkdtempSync(join(tmpdir(), 'popcorn-netns-'));
    this.secretFile = join(this.root, 'secret');
    writeSecret(this.secretFile);
    this.tag = process.pid.toString(36);
    this.flows = Array.from({ length: options.namespaces }, () => new Array<number>(options.namespaces).fill(0));
    let last = performance.now();
    this.stallTimer = setInterval(() => {
      const now = performance.now();
      this.stall = Math.max(this.stall, now - last - 50);
      last = now;
    }, 50);
    this.stallTimer.unref();
  }

  /**
   * How late the relay ran at worst since the last call, in ms (its event loop is this process's:
   * a stall here delays every link at once, as a network that stops for that long).
   */
  relayStallMs(): number {
    const worst = this.stall;
    this.stall = 0;
    return worst;
  }

  /** Create the namespaces, veths, relays and rules; on failure, remove what was made. */
  static async create(options: LabOptions): Promise<NetLab> {
    if (options.namespaces > 62) throw new Error('at most 62 namespaces in a /24');
    sweepStale();
    const lab = new NetLab(freeBlock(), options);
    try {
      for (let i = 0; i < options.namespaces; i++) lab.addNamespace(i);
      for (let i = 0; i < options.namespaces; i++) {
        for (let j = 0; j < options.namespaces; j++) if (i !== j) await lab.addRelay(i, j);
      }
      for (let i = 0; i < options.namespaces; i++) lab.addRules(i);
    } catch (error) {
      await lab.close();
      throw error;
    }
    return lab;
  }

  ns(i: number): string {
    return `${NS_PREFIX}${process.pid}-${i}`;
  }

  hostVeth(i: number): string {
    return `pc${this.tag}h${i}`;
  }

  private nsVeth(i: number): string {
    return `pc${this.tag}n${i}`;
  }

  /** The root namespace's end of namespace i's veth (where its relays listen). */
  hostIp(i: number): string {
    return `${this.prefix}.${4 * i + 1}`;
  }

  /** Namespace i's address: its node listens there. */
  nodeIp(i: number): string {
    return `${this.prefix}.${4 * i + 2}`;
  }

  listen(i: number): string {
    return `${this.nodeIp(i)}:${NODE_PORT}`;
  }

  private addNamespace(i: number): void {
    const ns = this.ns(i);
    sh('ip', ['netns', 'add', ns]);
    sh('ip', ['link', 'add', this.hostVeth(i), 'type', 'veth', 'peer', 'name', this.nsVeth(i), 'netns', ns]);
    sh('ip', ['addr', 'add', `${this.hostIp(i)}/30`, 'dev', this.hostVeth(i)]);
    sh('ip', ['link', 'set', this.hostVeth(i), 'up']);
    sh('ip', ['-n', ns, 'addr', 'add', `${this.nodeIp(i)}/30`, 'dev', this.nsVeth(i)]);
    sh('ip', ['-n', ns, 'link', 'set', this.nsVeth(i), 'up']);
    sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    sh('ip', ['-n', ns, 'route', 'add', 'default', 'via', this.hostIp(i)]);
  }

  /** Namespace i's NAT to its relays, and its (empty) loss chain, then the loss. */
  private addRules(i: number): void {
    const dnat: string[] = [];
    for (let j = 0; j < this.options.namespaces; j++) {
      if (j === i) continue;
      const relay = this.relays.get(`${i}>${j}`) as Relay;
      dnat.push(`    ip daddr ${this.nodeIp(j)} tcp dport ${NODE_PORT} dnat to ${this.hostIp(i)}:${relay.port}`);
    }
    const script = [
      'table ip popcorn {',
      '  chain to_relays {',
      '    type nat hook output priority -100; policy accept;',
      ...dnat,
      '  }',
      '  chain loss {',
      '    type filter hook input priority 0; policy accept;',
      '  }',
      '}',
      '',
    ].join('\n');
    sh('ip', ['netns', 'exec', this.ns(i), 'nft', '-f', '-'], script);
    this.setLoss(i, this.options.lossPercent);
  }

  /** Namespace i drops `percent` % of the packets it receives on its veth from now on. */
  setLoss(i: number, percent: number): void {
    sh('ip', ['netns', 'exec', this.ns(i), 'nft', 'flush', 'chain', 'ip', 'popcorn', 'loss']);
    if (percent > 0) {
      sh('ip', ['netns', 'exec', this.ns(i), 'nft', 'add', 'rule', 'ip', 'popcorn', 'loss', 'iifname', this.nsVeth(i), 'numgen', 'random', 'mod', '100', '<', String(percent), 'counter', 'drop']);
    }
  }

  /** Packets namespace i has dropped so far (its loss rule's counter). */
  dropped(i: number): number {
    const m = /counter packets (\d+)/.exec(sh('ip', ['netns', 'exec', this.ns(i), 'nft', 'list', 'chain', 'ip', 'popcorn', 'loss']));
    return m === null ? 0 : Number(m[1]);
  }

  /** Cut namespace i off: its veth goes down (no packet in or out; no RST either). */
  partition(i: number): void {
    sh('ip', ['link', 'set', this.hostVeth(i), 'down']);
  }

  /**
   * Set namespace i's veth up again; resolves once both ends have their carrier back, the
   * namespace's routes are no longer marked linkdown, and both ends have forgotten the
   * neighbours they failed to reach meanwhile (an ARP resolution still failing from the partition
   * would fail a new connection at once with EHOSTUNREACH).
   */
  async heal(i: number): Promise<void> {
    sh('ip', ['link', 'set', this.hostVeth(i), 'up']);
    const ready = (): boolean => /LOWER_UP/.test(sh('ip', ['link', 'show', this.hostVeth(i)]))
      && /LOWER_UP/.test(sh('ip', ['-n', this.ns(i), 'link', 'show', this.nsVeth(i)]))
      && !/linkdown/.test(sh('ip', ['-n', this.ns(i), 'route', 'show']));
    for (let tries = 0; !ready(); tries++) {
      if (tries > 100) throw new Error(`${this.hostVeth(i)} did not come up`);
      await sleep(50);
    }
    sh('ip', ['neigh', 'flush', 'dev', this.hostVeth(i)]);
    sh('ip', ['-n', this.ns(i), 'neigh', 'flush', 'dev', this.nsVeth(i)]);
  }

  /** Bytes the relays have read from namespace `from`'s nodes toward namespace `to`. */
  flow(from: number, to: number): number {
    return this.flows[from]?.[to] ?? 0;
  }

  /**
   * Call `fire` (once, synchronously, from the relay) when flow(from, to) first reaches `bytes`;
   * returns a function that cancels it if it has not fired.
   */
  onFlow(from: number, to: number, bytes: number, fire: () => void): () => void {
    const watcher = { from, to, bytes, fire };
    if (this.flow(from, to) >= bytes) fire();
    else this.watchers.push(watcher);
    return () => {
      const at = this.watchers.indexOf(watcher);
      if (at >= 0) this.watchers.splice(at, 1);
    };
  }

  /** The relay for connections from namespace i to namespace j's node. */
  private addRelay(i: number, j: number): Promise<void> {
    const server = net.createServer((down) => {
      if (this.closed) return void down.destroy();
      const up = net.connect({ host: this.nodeIp(j), port: NODE_PORT });
      this.pipe(down, up, i, j);
      this.pipe(up, down, j, i);
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, this.hostIp(i), () => {
        server.off('error', reject);
        this.relays.set(`${i}>${j}`, { server, port: (server.address() as net.AddressInfo).port });
        resolve();
      });
    });
  }

  /**
   * Limit every direction of every relayed connection to `bytesPerSecond` from now on (0: no
   * limit), on top of the delay: a slow link.
   */
  setRate(bytesPerSecond: number): void {
    this.rate = bytesPerSecond;
  }

  /**
   * Forward what `from` reads to `to`, in order, each chunk `delayMs` after it came (and, with a
   * rate, no sooner than the rate allows after the one before); stop reading while too much
   * waits. Its end, and its loss, reach `to` after the chunks before them.
   */
  private pipe(from: net.Socket, to: net.Socket, fromNs: number, toNs: number): void {
    const delay = this.options.delayMs;
    this.sockets.add(from);
    from.on('error', () => undefined); // a reset or a killed node: 'close' follows
    from.setNoDelay(true);
    /** Chunks waiting, with when each may go; null: end `to` (after the chunks before). */
    const queue: { chunk: Buffer | null; due: number }[] = [];
    let held = 0;
    let lastDue = 0;
    let timer: NodeJS.Timeout | undefined;
    const pace = (): void => {
      if (held + to.writableLength > RELAY_HIGH_WATER) from.pause();
      else if (!from.destroyed) from.resume();
    };
    const release = (): void => {
      timer = undefined;
      const now = performance.now();
      while (queue.length > 0 && (queue[0]?.due ?? 0) <= now) {
        const { chunk } = queue.shift() as { chunk: Buffer | null; due: number };
        if (chunk === null) {
          // A graceful end ends `to` too; a reset (or a killed node) ends it once it has written.
          if (!to.destroyed) to.destroySoon();
          continue;
        }
        held -= chunk.length;
        if (!to.destroyed && to.writable) to.write(chunk);
      }
      pace();
      if (queue.length > 0) timer = setTimeout(release, Math.max(1, (queue[0]?.due ?? now) - now));
    };
    const enqueue = (chunk: Buffer | null): void => {
      const bytes = chunk?.length ?? 0;
      const due = Math.max(performance.now() + delay, this.rate > 0 ? lastDue + (bytes * 1000) / this.rate : 0);
      lastDue = due;
      queue.push({ chunk, due });
      if (timer === undefined) timer = setTimeout(release, Math.max(1, due - performance.now()));
    };
    from.on('data', (chunk: Buffer) => {
      const flows = this.flows[fromNs] as number[];
      flows[toNs] = (flows[toNs] ?? 0) + chunk.length;
      for (const w of [...this.watchers]) {
        if (w.from === fromNs && w.to === toNs && (flows[toNs] ?? 0) >= w.bytes) {
          this.watchers.splice(this.watchers.indexOf(w), 1);
          w.fire();
        }
      }
      held += chunk.length;
      enqueue(chunk);
      pace();
    });
    to.on('drain', pace);
    from.on('close', () => {
      this.sockets.delete(from);
      enqueue(null);
    });
  }

  /**
   * Boot a node in namespace `i`: `ip netns exec NS node main.js boot --foreground` (it founds
   * the cluster, or joins through `join`); resolves once it is up, with its node number.
   */
  async boot(i: number, options: { join?: LabNode; kernels?: number } = {}): Promise<LabNode> {
    const dir = join(this.root, `node${this.nodeDirs++}`);
    mkdirSync(dir, { mode: 0o700 });
    const env = { POPCORN_RUNTIME_DIR: dir, POPCORN_CACHE_DIR: TEST_CACHE };
    const child = startNode(
      { kernels: options.kernels ?? 1, listen: this.listen(i), join: options.join?.listen, secretFile: this.secretFile },
      { name: `the node in ${this.ns(i)}`, env, dir: this.root, launcher: ['ip', 'netns', 'exec', this.ns(i)] },
    );
    this.children.add(child);
    void child.exited.then(() => this.children.delete(child));
    const node = await nodeUp(child, 40_000);
    return {
      node,
      ns: i,
      listen: this.listen(i),
      dir,
      pid: child.proc.pid as number,
      cli: (cliArgs, o = {}) => popcorn(cliArgs, { env, timeoutMs: o.timeoutMs ?? 30_000, ...(o.input === undefined ? {} : { input: o.input }) }),
      session: (cliArgs) => {
        const s = startSession(cliArgs, env);
        this.sessions.add(s.child);
        void s.done.finally(() => this.sessions.delete(s.child));
        return s;
      },
      feed: (cliArgs) => {
        const f = startFeed(cliArgs, env);
        this.sessions.add(f.child);
        void f.done.finally(() => this.sessions.delete(f.child));
        return f;
      },
      log: () => child.output,
      waitForLog: (pattern, timeoutMs) => child.waitFor(pattern, timeoutMs),
      alive: () => child.alive(),
      exited: child.exited,
    };
  }

  /** Kill every node and session, remove the namespaces, veths, relays and files. Never throws. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.stallTimer);
    for (const child of this.sessions) child.kill('SIGKILL');
    const children = [...this.children];
    for (const child of children) child.killNow();
    await Promise.race([Promise.all(children.map((child) => child.exited)), sleep(5_000)]);
    for (const socket of this.sockets) socket.destroy();
    for (const { server } of this.relays.values()) server.close();
    for (let i = 0; i < this.options.namespaces; i++) {
      const ns = this.ns(i);
      // Anything still in the namespace is ours (we made it): nothing may keep it alive.
      for (const pid of spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)) {
        try {
          process.kill(Number(pid), 'SIGKILL');
        } catch {
          // gone meanwhile
        }
      }
      quiet('ip', ['netns', 'del', ns]);
      quiet('ip', ['link', 'del', this.hostVeth(i)]);
    }
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** `popcorn ARGS` with its stdin left open for the test to write. */
function startFeed(args: string[], env: Record<string, string>): Feed {
  const session = startSession(args, env, { keepStdin: true });
  const stdin = session.child.stdin;
  stdin?.on('error', () => undefined); // it may end before we stop writing
  return {
    ...session,
    write: (data) => new Promise((resolve, reject) => {
      if (stdin === null || stdin.destroyed) return reject(new Error(`popcorn ${args.join(' ')}: stdin is closed`));
      stdin.write(data, (error) => (error ? reject(error) : resolve()));
      return undefined;
    }),
    end: () => void stdin?.end(),
  };
}
