/**
 * Signals: Linux numbers, POSIX default actions, and each process's dispositions (default,
 * ignore, or a handler in the program's function table). Delivery itself is the process
 * service's job (src/services/process.ts); this file only decides what a signal does.
 */

export const SIGHUP = 1;
export const SIGINT = 2;
export const SIGQUIT = 3;
export const SIGABRT = 6;
export const SIGKILL = 9;
export const SIGUSR1 = 10;
export const SIGSEGV = 11;
export const SIGUSR2 = 12;
export const SIGPIPE = 13;
export const SIGALRM = 14;
export const SIGTERM = 15;
export const SIGCHLD = 17;
export const SIGCONT = 18;
export const SIGSTOP = 19;
export const SIGTSTP = 20;
export const SIGTTIN = 21;
export const SIGTTOU = 22;
export const SIGURG = 23;
export const SIGWINCH = 28;
/** Highest signal number accepted (Linux's SIGSYS). */
export const MAX_SIGNAL = 31;

/** Linux's names, without SIG, by number (`kill -l`): what `popcorn kill -NAME` accepts. */
const NAMES = [
  '', 'HUP', 'INT', 'QUIT', 'ILL', 'TRAP', 'ABRT', 'BUS', 'FPE', 'KILL', 'USR1', 'SEGV', 'USR2', 'PIPE', 'ALRM', 'TERM',
  'STKFLT', 'CHLD', 'CONT', 'STOP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'XCPU', 'XFSZ', 'VTALRM', 'PROF', 'WINCH', 'IO', 'PWR', 'SYS',
] as const;

/** The number of a signal named with or without SIG, in any case (TERM, sigterm); undefined if none. */
export function signalOfName(name: string): number | undefined {
  const i = NAMES.indexOf(name.toUpperCase().replace(/^SIG/, '') as (typeof NAMES)[number]);
  return i > 0 ? i : undefined;
}

/**
 * The exit status of a process lost with its kernel or its node (128 + SIGKILL: to its parent it
 * was killed); the exit record's trap text says what was lost.
 */
export const LOST_STATUS = 137;

/** What a signal does when the process has not chosen otherwise. */
export type DefaultAction = 'terminate' | 'stop' | 'continue' | 'ignore';

const STOP_SIGNALS = new Set([SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU]);
const IGNORED_BY_DEFAULT = new Set([SIGCHLD, SIGURG, SIGWINCH]);

export function defaultAction(signal: number): DefaultAction {
  if (STOP_SIGNALS.has(signal)) return 'stop';
  if (signal === SIGCONT) return 'continue';
  if (IGNORED_BY_DEFAULT.has(signal)) return 'ignore';
  return 'terminate';
}

/** A signal number a process can be sent: 1..MAX_SIGNAL, or 0 (only checks that it exists). */
export function isValidSignal(signal: unknown): signal is number {
  return Number.isInteger(signal) && (signal as number) >= 0 && (signal as number) <= MAX_SIGNAL;
}

/** SIGKILL and SIGSTOP can be neither caught nor ignored. */
export function isCatchable(signal: number): boolean {
  return signal !== SIGKILL && signal !== SIGSTOP;
}

/** A disposition: the default action, ignore, or the function-table index of a handler. */
export type Disposition = { kind: 'default' } | { kind: 'ignore' } | { kind: 'handler'; index: number };

const DEFAULT: Disposition = { kind: 'default' };

/** One process's dispositions and the caught signals waiting for their handler to run. */
export class SignalState {
  private readonly dispositions = new Map<number, Disposition>();
  /** Caught signals not yet handled, in arrival order; a signal already pending is not queued twice (as POSIX). */
  private readonly pending: number[] = [];

  disposition(signal: number): Disposition {
    return this.dispositions.get(signal) ?? DEFAULT;
  }

  /** Sets a disposition; the caller has checked the signal is catchable. */
  set(signal: number, disposition: Disposition): void {
    if (disposition.kind === 'default') this.dispositions.delete(signal);
    else this.dispositions.set(signal, disposition);
    // A signal now ignored or defaulted no longer waits for a handler.
    if (disposition.kind !== 'handler') this.drop(signal);
  }

  /** Queue a caught signal for its handler. */
  queue(signal: number): void {
    if (!this.pending.includes(signal)) this.pending.push(signal);
  }

  /** Every disposition other than the default, for a process image. */
  entries(): [number, Disposition][] {
    return [...this.dispositions];
  }

  /** Caught signals waiting for their handler, in order. */
  pendingSignals(): number[] {
    return [...this.pending];
  }

  get hasPending(): boolean {
    return this.pending.length > 0;
  }

  /** The next caught signal and its handler, or undefined (a disposition changed meanwhile is skipped). */
  take(): { signal: number; index: number } | undefined {
    while (this.pending.length > 0) {
      const signal = this.pending.shift() as number;
      const d = this.disposition(signal);
      if (d.kind === 'handler') return { signal, index: d.index };
    }
    return undefined;
  }

  private drop(signal: number): void {
    const i = this.pending.indexOf(signal);
    if (i >= 0) this.pending.splice(i, 1);
  }
}

/** Linux wait status: exit code in bits 8–15, or the terminating signal in bits 0–6. */
export function waitStatus(status: number, signal: number): number {
  return signal !== 0 ? signal & 0x7f : (status & 0xff) << 8;
}

/** WASI's $signal numbering (proc_raise) differs from Linux's above SIGTERM; this maps it. */
const WASI_TO_LINUX = [
  0, SIGHUP, SIGINT, SIGQUIT, 4, 5, SIGABRT, 7, 8, SIGKILL, SIGUSR1, 11, SIGUSR2, SIGPIPE, SIGALRM, SIGTERM,
  SIGCHLD, SIGCONT, SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU, SIGURG, 24, 25, 26, 27, SIGWINCH, 29, 30, 31,
];

/** Whether proc_raise may name `signal`: preview1's $signal goes from 0 (none) to 30 (SYS). */
export function isWasiSignal(signal: number): boolean {
  return Number.isInteger(signal) && signal >= 0 && signal < WASI_TO_LINUX.length;
}

export function linuxSignalOfWasi(signal: number): number {
  return WASI_TO_LINUX[signal] ?? signal;
}
