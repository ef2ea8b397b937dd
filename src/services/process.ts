/**
 * The process service, kernel side (Popcorn's process_server): starts processes on this kernel,
 * delivers signals to them, and tells each process's parent how it ended.
 */

import type { Kernel } from '../kernel/kernel.js';
import { Process } from '../kernel/process.js';
import type { SliceOutcome } from '../kernel/execution.js';
import { HostInput, HostOutput, HostStreamChannels } from '../kernel/host-stream.js';
import { formatTrap, TRAP_EXIT_STATUS } from '../kernel/trap.js';
import { compileCached } from '../wasm/compiled.js';
import type { FileDescription } from '../kernel/wasi/file-description.js';
import type { Payload } from '../protocol.js';
import { PidAllocator } from '../kernel/pids.js';

export function installProcessService(kernel: Kernel): void {
  const channels = new HostStreamChannels(kernel.messenger, kernel.host);
  const pids = new PidAllocator(kernel.id);
  const m = kernel.messenger;

  m.on('proc_start', (msg, from) => {
    try {
      // The kernel knows its live processes; exit statuses are kept by the parent (the host, for
      // now) until the PID space is 65 535 deep, which a zombie would have to outlive to clash.
      const p = startProcess(kernel, msg, pids.next((pid) => kernel.processes.has(pid)), channels);
      m.reply(from, 'proc_start', { pid: p.pid, kernel: kernel.id });
    } catch (error) {
      m.fail(from, 'ENOEXEC', error instanceof Error ? error.message : String(error));
    }
  });
  m.on('proc_kill', (msg) => {
    const p = kernel.processes.get(msg.pid);
    if (p !== undefined) deliverSignal(kernel, p, msg.signal);
  });
  m.on('stream_credit', (msg) => channels.get(msg.stream)?.credit(msg.bytes));
  m.on('stream_data', (msg) => channels.get(msg.stream)?.received(msg.data, msg.eof));
  kernel.onProcessEnd((p, outcome) => reportEnd(kernel, p, outcome));
}

/** POSIX signal numbers whose default action is not "terminate". */
const SIGCHLD = 17;
const SIGCONT = 18;
const SIGSTOP = 19;
const SIGTSTP = 20;
const SIGTTIN = 21;
const SIGTTOU = 22;
const SIGURG = 23;
const SIGWINCH = 28;
const STOP_SIGNALS = new Set([SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU]);
const IGNORED_BY_DEFAULT = new Set([SIGCHLD, SIGURG, SIGWINCH]);

/**
 * A signal's default action (programs cannot install handlers yet): stop, continue, ignore, or
 * terminate. Signal 0 only probes that the process exists.
 */
function deliverSignal(kernel: Kernel, p: Process, signal: number): void {
  if (signal === 0 || IGNORED_BY_DEFAULT.has(signal)) return;
  if (STOP_SIGNALS.has(signal)) kernel.scheduler.stop(p);
  else if (signal === SIGCONT) kernel.scheduler.continue(p);
  else kernel.scheduler.kill(p, signal);
}

function startProcess(kernel: Kernel, msg: Payload<'proc_start'>, pid: number, channels: HostStreamChannels): Process {
  const module = compileCached(msg.hash);
  const stdio = [0, 1, 2].map((fd): FileDescription => {
    const stream = channels.acquire(msg.stdio[fd] ?? fd);
    return fd === 0 ? new HostInput(stream) : new HostOutput(stream);
  }) as [FileDescription, FileDescription, FileDescription];
  let p: Process;
  try {
    p = new Process(
      {
        pid, parent: msg.parent, name: msg.name, args: msg.args, env: msg.env, dirs: msg.dirs, stdio,
        kernel: kernel.kernels.indexOf(kernel.id), kernels: kernel.kernels.length,
      },
      module,
      () => {
        kernel.interrupts();
        return kernel.scheduler.shouldPreempt();
      },
      (text) => kernel.log(text),
    );
  } catch (error) {
    for (const d of stdio) d.close();
    throw error;
  }
  kernel.processes.set(p.pid, p);
  kernel.scheduler.admit(p);
  return p;
}

function reportEnd(kernel: Kernel, p: Process, outcome: SliceOutcome): void {
  p.release();
  let status = 0;
  let signal = 0;
  let trap = '';
  if (outcome.kind === 'exited') {
    status = outcome.status;
    signal = outcome.signal ?? 0;
  } else if (outcome.kind === 'trapped') {
    status = TRAP_EXIT_STATUS;
    trap = formatTrap(p.name, outcome.error);
  }
  kernel.messenger.send(p.parent, 'proc_exited', { pid: p.pid, status, signal, trap });
}
