/**
 * The stress scenarios within one node of three kernels (see scripts/stress.ts): a pipeline whose
 * stages move while bytes flow, checkpoints taken while a process moves, signals sent while it
 * moves, and spawn/wait storms across kernels. Each `once()` is one run; it throws a RunFailure
 * (or any error) when something is wrong.
 */

import type { PopcornNode } from '../src/node/node.js';
import { attachProcess, bootNode, startProgram, type Started } from '../test/ssi-helpers.js';
import { sleep } from '../test/cli-helpers.js';
import { assertExit, assertStream, checkStream, record, RECORD_BYTES, RunFailure, within } from './stress-tally.js';

export interface ScenarioRun {
  once(): Promise<void>;
  close(): Promise<void>;
}

export interface Scenario {
  name: string;
  describe: string;
  open(log: (line: string) => void): Promise<ScenarioRun>;
}

const KERNELS = 3;
/** No run of these scenarios takes near this long, even on a loaded machine: past it, a hang. */
const RUN_LIMIT_MS = 60_000;

const randomInt = (n: number): number => Math.floor(Math.random() * n);
/** A kernel other than `from`, at random. */
const otherKernel = (from: number): number => (from + 1 + randomInt(KERNELS - 1)) % KERNELS;

/** The kernel a live process runs on (a zombie is listed at its origin: it runs nowhere). */
async function where(node: PopcornNode, pid: number): Promise<number | undefined> {
  return (await node.info()).find((k) => k.processes.some((p) => p.pid === pid && p.state !== 'zombie'))?.index;
}

/** A node for `once`, shut down by close(). */
async function onNode(once: (node: PopcornNode) => Promise<void>): Promise<ScenarioRun> {
  const node = await bootNode(KERNELS);
  return { once: () => once(node), close: () => node.shutdown() };
}

/**
 * The pids of the `count` live children of `parent` named `name`, once they all run; a failure
 * after 10 s. Children only: the last run's processes may still be listed a moment after their
 * parent reaped them (the origin learns of the reaping by a message), and counting them would
 * pick the wrong processes.
 */
async function childrenNamed(node: PopcornNode, parent: number, name: string, count: number): Promise<number[]> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    const listed = (await node.info()).flatMap((k) => k.processes);
    const pids = listed.filter((p) => p.ppid === parent && p.name === name && p.state !== 'zombie').map((p) => p.pid);
    if (pids.length === count) return pids;
    if (performance.now() > deadline) throw new RunFailure(`${count} ${name} children of ${parent} expected, found ${pids.length}`);
    await sleep(5);
  }
}

/**
 * `cat | @1 cat` under sh, fed records from the host in chunks of random size; between chunks,
 * at random, one of the two cats (the first writes the pipe, the second reads it) moves to
 * another kernel. Every record must come out once and in order.
 */
export const pipeMigration: Scenario = {
  name: 'pipe-migration',
  describe: 'a pipe writer and reader moved between kernels mid-stream; every byte checked',
  open: () =>
    onNode(async (node) => {
      const records = 3000;
      const moves = 6;
      const sh = await startProgram(node, 'sh.wasm', ['-c', 'cat | @1 cat']);
      const stages = await childrenNamed(node, sh.pid, 'cat.wasm', 2);
      const kernels = new Map<number, number>();
      for (const pid of stages) kernels.set(pid, (await where(node, pid)) ?? 0);
      // `@1 cat` reads the pipe; the other cat, on sh's kernel, writes it.
      const role = (pid: number): string => (kernels.get(pid) === 1 ? 'reader' : 'writer');
      const roles = new Map(stages.map((pid) => [pid, role(pid)]));
      const history: string[] = [];
      let sent = 0;
      const feed = (n: number): void => {
        let chunk = '';
        for (const end = Math.min(records, sent + n); sent < end; sent++) chunk += record(sent);
        sh.stdin.write(chunk);
      };
      for (let m = 0; m < moves; m++) {
        feed(1 + randomInt((2 * records) / moves));
        await sleep(randomInt(4));
        const pid = stages[randomInt(2)]!;
        const to = otherKernel(kernels.get(pid)!);
        history.push(`${roles.get(pid)} to ${to} after record ${sent}`);
        await node.move(pid, to).catch(async (error: unknown) => {
          // Killed, so the next run on this node finds only its own processes.
          for (const victim of [...stages, sh.pid]) await node.kill(victim, 9).catch(() => false);
          await within(RUN_LIMIT_MS, 'the pipeline, killed', sh.exit()).catch(() => undefined);
          throw new RunFailure(`${(error as Error).message} (moves: ${history.join(', ')})`);
        });
        kernels.set(pid, to);
      }
      feed(records);
      sh.stdin.end();
      const exit = await within(RUN_LIMIT_MS, 'the pipeline', sh.exit()).catch(async (error: unknown) => {
        // Say which processes are left and in what state, and how far the output got: that is where it hangs.
        const left = (await node.info()).flatMap((k) => k.processes.map((q) => `${q.pid} ${q.name} on kernel ${k.index}: ${q.state}`));
        const check = checkStream(sh.stdout(), records);
        throw new RunFailure(`${(error as Error).message} (moves: ${history.join(', ')}; ${sh.stdout().length} of ${records * RECORD_BYTES} bytes out, ${check.lost} lost; listed: ${left.join('; ') || 'nothing'})`, { hangs: 1 });
      });
      assertStream('pipeline output', sh.stdout(), records, `moves: ${history.join(', ')}`);
      assertExit('sh', exit, { status: 0 }, sh.stderr());
    }),
};

const checksum = (text: string): string => /checksum (\w+)/.exec(text)?.[1] ?? `none in ${JSON.stringify(text)}`;
const COMPUTE_ROUNDS = '3000';

/**
 * migrate.wasm compute checkpointed while it moves kernel to kernel (the checkpoint request and
 * the moves race), then killed and restored: the restored run's checksum must be an unmoved
 * run's. It waits for its stdin to end before it prints and exits, so it is still there for the
 * moves and the checkpoint however long the host takes to send them (the computation alone lasts
 * some 20–80 ms: a host stalled that long by the load saw it end first, and the moves and the
 * checkpoint failed with ESRCH, rightly). It is checkpointed computing or reading its stdin.
 */
export const checkpointMove: Scenario = {
  name: 'checkpoint-move',
  describe: 'checkpoint during a move; the restored run ends as an unmoved run',
  async open() {
    let reference: string | undefined;
    const compute = (node: PopcornNode): Promise<Started> => startProgram(node, 'test/migrate.wasm', ['compute', COMPUTE_ROUNDS, '0', 'stdin'], { bin: 'test', kernel: 0 });
    return onNode(async (node) => {
      if (reference === undefined) {
        const still = await compute(node);
        still.stdin.end();
        assertExit('the unmoved run', await still.exit(), { status: 0 }, still.stderr());
        reference = checksum(still.stdout());
      }
      const p = await compute(node);
      let kernel = 0;
      const moves = (async () => {
        for (let i = 0; i < 3; i++) {
          kernel = otherKernel(kernel);
          await node.move(p.pid, kernel);
        }
      })();
      // Its outcome is read below (allSettled); a refusal during the sleep must not count as unhandled.
      moves.catch(() => undefined);
      await sleep(randomInt(5));
      const taken = node.checkpoint(p.pid, true);
      const [moved, file] = await Promise.allSettled([moves, taken]);
      if (moved.status === 'rejected' || file.status === 'rejected') {
        await node.kill(p.pid, 9);
        await p.exit();
        const why = [moved, file].flatMap((r) => (r.status === 'rejected' ? [(r.reason as Error).message] : []));
        throw new RunFailure(`checkpoint during a move: ${why.join('; ')}`);
      }
      if (!(await node.kill(p.pid, 9))) throw new RunFailure(`pid ${p.pid} gone before the kill`);
      assertExit('the checkpointed process', await p.exit(), { signal: 9 });
      const r = await attachProcess(node, (streams) => node.restore(file.value, { kernel: randomInt(KERNELS), streams }));
      r.stdin.end();
      assertExit('the restored process', await within(RUN_LIMIT_MS, 'the restored process', r.exit()), { status: 0 }, r.stderr());
      if (checksum(r.stdout()) !== reference) throw new RunFailure(`restored checksum ${checksum(r.stdout())}, unmoved ${reference}`);
    });
  },
};

/**
 * signals.wasm handle USR1, moved while it is stopped (SIGSTOP), sent USR1 while stopped and
 * moving, continued (SIGCONT) while moving: exactly one "caught 10"; then it ends by EOF (exit 0)
 * or by SIGKILL sent during a move (signal 9), at random.
 */
export const signalMoves: Scenario = {
  name: 'signal-moves',
  describe: 'stop, continue, a handled signal and kill during moves; exit statuses checked',
  open: () =>
    onNode(async (node) => {
      const p = await startProgram(node, 'test/signals.wasm', ['handle', '10'], { bin: 'test' });
      await p.waitFor('ready');
      let kernel = 0;
      // A SIGKILL may end the process before the move takes it: the move is then refused with
      // ESRCH, as Linux refuses to act on a process that has gone. Any other refusal is a failure.
      const moveWith = async (signal: number): Promise<void> => {
        kernel = otherKernel(kernel);
        const moved = node.move(p.pid, kernel).catch((error: unknown) => {
          if (signal === 9 && /\bESRCH\b/.test((error as Error).message)) return;
          throw error;
        });
        const [, sent] = await Promise.all([moved, node.kill(p.pid, signal)]);
        if (!sent) throw new RunFailure(`signal ${signal}: no such process ${p.pid}`);
      };
      await moveWith(19);
      await moveWith(10);
      await moveWith(18);
      await within(RUN_LIMIT_MS, 'caught 10', p.waitFor('caught 10', RUN_LIMIT_MS));
      const kill = Math.random() < 0.5;
      if (kill) await moveWith(9);
      else p.stdin.end();
      const exit = await within(RUN_LIMIT_MS, 'the signalled process', p.exit()).catch(async (error: unknown) => {
        const state = (await node.info()).flatMap((k) => k.processes.filter((q) => q.pid === p.pid).map((q) => `${q.state} on kernel ${k.index}`));
        throw new RunFailure(`${(error as Error).message} (${kill ? 'SIGKILL during a move' : 'stdin closed'}; listed: ${state.join(', ') || 'nowhere'})\nstdout: ${JSON.stringify(p.stdout())}`, { hangs: 1 });
      });
      assertExit('signals handle', exit, kill ? { signal: 9 } : { status: 0 }, p.stderr());
      const caught = p.stdout().split('caught 10').length - 1;
      if (caught !== 1) throw new RunFailure(`one USR1 sent, ${caught} handled: ${JSON.stringify(p.stdout())}`);
    }),
};

/**
 * A storm: four family.wasm `many 8 KERNEL` (each spawns and waits for 8 children on KERNEL) and
 * twelve exit_code.wasm with random statuses, on random kernels, all at once.
 */
export const spawnStorm: Scenario = {
  name: 'spawn-storm',
  describe: 'spawn/wait storms across kernels; every exit status checked',
  open: () =>
    onNode(async (node) => {
      const children = 8;
      const families = Array.from({ length: 4 }, () =>
        startProgram(node, 'test/family.wasm', ['many', String(children), String(randomInt(KERNELS))], { bin: 'test', kernel: randomInt(KERNELS) }));
      const codes = Array.from({ length: 12 }, () => randomInt(256));
      const exits = codes.map((code) => startProgram(node, 'test/exit_code.wasm', [String(code)], { bin: 'test', kernel: randomInt(KERNELS) }));
      for (const [i, started] of codes.entries()) {
        const p = await exits[i]!;
        assertExit(`exit_code ${started}`, await within(RUN_LIMIT_MS, 'exit_code', p.exit()), { status: started });
      }
      for (const started of families) {
        const f = await started;
        assertExit('family many', await within(RUN_LIMIT_MS, 'family many', f.exit()), { status: 0 }, f.stdout() + f.stderr());
        const lines = f.stdout().split('\n').filter((l) => l.startsWith('child pid='));
        if (!f.stdout().includes(`many ok ${children}`) || lines.length !== children) throw new RunFailure(`family many ${children}: ${JSON.stringify(f.stdout())}`);
      }
    }),
};
