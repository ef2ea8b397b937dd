/**
 * Processes a harness starts — nodes booted in the foreground, helper programs — with their
 * output kept for waiting and for errors, and a temp dir they share; all of it released on every
 * way out. Each child loads test/orphan-guard.ts first, so a harness killed outright (SIGKILL, no
 * cleanup) leaves nothing behind for long: its children notice within a second, stop themselves
 * and remove the temp dir.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, sleep } from './cli-helpers.js';

const ORPHAN_GUARD = new URL('./orphan-guard.js', import.meta.url).href;
/** How much of a child's output an error shows. */
const TAIL_BYTES = 8 * 1024;

export interface ChildOptions {
  /** What errors call it: "node B", "the node in popcorn-123-0". */
  name: string;
  /** The JavaScript file node runs, and its arguments. */
  script: string;
  args: string[];
  /** Added to this process's environment. */
  env: Record<string, string>;
  /** The temp dir the child removes if it outlives the harness. */
  dir: string;
  /** A command that runs node for us, e.g. `ip netns exec NS`; none: node is the child. */
  launcher?: string[];
  /** Copy its output to our stderr as it comes, each line after this prefix. */
  echo?: string;
}

/** A child process of the harness, its output (stdout and stderr as they came) kept. */
export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  output = '';
  /** How it ended; undefined while it runs (or its output is still coming). */
  exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Resolves once it has ended and all its output is in. */
  readonly exited: Promise<void>;
  private readonly waiters = new Set<() => void>();

  constructor(options: ChildOptions) {
    this.name = options.name;
    const argv = [...(options.launcher ?? []), process.execPath, '--import', ORPHAN_GUARD, options.script, ...options.args];
    this.proc = spawn(argv[0]!, argv.slice(1), {
      cwd: ROOT,
      env: { ...process.env, ...options.env, POPCORN_HARNESS_PARENT: String(process.pid), POPCORN_HARNESS_DIR: options.dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const keep = (text: string): void => {
      this.output += text;
      if (options.echo !== undefined) process.stderr.write(text.replace(/^(?=.)/gm, options.echo));
      this.wake();
    };
    this.proc.stdout?.setEncoding('utf8').on('data', keep);
    this.proc.stderr?.setEncoding('utf8').on('data', keep);
    this.exited = new Promise<void>((resolve) => {
      // 'close', not 'exit': by then all of its output is in.
      this.proc.once('close', (code, signal) => {
        this.exit = { code, signal };
        resolve();
      });
      this.proc.once('error', (error) => {
        keep(`spawn failed: ${error.message}\n`);
        this.exit ??= { code: null, signal: null };
        resolve();
      });
    }).then(() => this.wake());
  }

  alive(): boolean {
    return this.exit === undefined;
  }

  /** The end of its output, for an error message. */
  tail(): string {
    return this.output.slice(-TAIL_BYTES);
  }

  /** For an error about something else: '' while it runs, else how it ended and its last output. */
  exitNote(): string {
    return this.alive() ? '' : `\n${this.name} exited (${JSON.stringify(this.exit)}); its output:\n${this.tail()}`;
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /**
   * Resolves with performance.now() at the moment `pattern` appeared in its output (at once if it
   * is there); rejects if it ends first or `timeoutMs` passes.
   */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<number> {
    if (pattern.test(this.output)) return Promise.resolve(performance.now());
    return new Promise((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      const timer = setTimeout(() => {
        settle();
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${String(pattern)} from ${this.name}; its output:\n${this.tail()}`));
      }, timeoutMs);
      const check = (): void => {
        if (pattern.test(this.output)) {
          settle();
          resolve(performance.now());
        } else if (!this.alive()) {
          settle();
          reject(new Error(`${this.name} exited (${JSON.stringify(this.exit)}) while waiting for ${String(pattern)}; its output:\n${this.tail()}`));
        }
      };
      this.waiters.add(check);
    });
  }

  /** SIGTERM, then SIGKILL if it has not ended within `graceMs`. */
  async stop(graceMs = 5_000): Promise<void> {
    if (!this.alive()) return;
    this.proc.kill('SIGTERM');
    const ended = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!ended) {
      this.proc.kill('SIGKILL');
      await this.exited;
    }
  }

  /** The last resort (process exit, signals, a test's cleanup): SIGKILL now, synchronously. */
  killNow(): void {
    if (this.alive()) this.proc.kill('SIGKILL');
  }
}

/**
 * What a harness holds outside itself — its children and a temp dir — released on every way
 * out: release() from `finally`, and synchronously on process exit and on SIGINT/SIGTERM.
 */
export class Resources {
  readonly dir: string;
  private readonly children: Child[] = [];
  private readonly onExit = (): void => this.releaseNow();
  private readonly onSignal = (signal: NodeJS.Signals): void => {
    this.releaseNow();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };

  constructor(prefix: string) {
    this.dir = mkdtempSync(join(tmpdir(), prefix));
    process.on('exit', this.onExit);
    process.once('SIGINT', this.onSignal);
    process.once('SIGTERM', this.onSignal);
  }

  /** Release `child`, started with `dir` this one's, with the rest. */
  hold(child: Child): Child {
    this.children.push(child);
    return child;
  }

  private releaseNow(): void {
    for (const child of this.children) child.killNow();
    rmSync(this.dir, { recursive: true, force: true });
  }

  async release(): Promise<void> {
    await Promise.all(this.children.map((child) => child.stop()));
    rmSync(this.dir, { recursive: true, force: true });
    process.off('exit', this.onExit);
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
