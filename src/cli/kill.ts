/**
 * `popcorn kill [-SIGNAL | -s SIGNAL] PID…`: send a signal (default SIGTERM) to processes of the
 * running node. SIGNAL is a number or a name, with or without SIG (TERM, SIGTERM, 15).
 */

import { controlRequest } from '../node/control-client.js';
import { ControlError } from '../node/control-protocol.js';
import { SIGTERM, isValidSignal, signalOfName } from '../kernel/signals.js';
import { UsageError } from './usage.js';

export function parseSignal(spec: string): number {
  const n = /^\d+$/.test(spec) ? Number(spec) : signalOfName(spec);
  if (!isValidSignal(n)) throw new UsageError(`unknown signal '${spec}'`);
  return n;
}

/** Parse kill's words (commander leaves `-9` and `-TERM` to us). */
export function parseKillArgs(words: string[]): { signal: number; pids: number[] } {
  let signal = SIGTERM;
  const pids: number[] = [];
  for (let i = 0; i < words.length; i++) {
    const w = words[i] as string;
    if (w === '-s' || w === '--signal') {
      const next = words[++i];
      if (next === undefined) throw new UsageError(`${w} needs a signal`);
      signal = parseSignal(next);
    } else if (w.startsWith('-') && w.length > 1 && pids.length === 0) {
      signal = parseSignal(w.slice(1));
    } else if (/^\d+$/.test(w)) {
      pids.push(Number(w));
    } else {
      throw new UsageError(`invalid pid '${w}'`);
    }
  }
  if (pids.length === 0) throw new UsageError('kill needs a PID');
  return { signal, pids };
}

export async function killCommand(words: string[]): Promise<number> {
  const { signal, pids } = parseKillArgs(words);
  let status = 0;
  for (const pid of pids) {
    try {
      await controlRequest({ op: 'kill', pid, signal });
    } catch (error) {
      if (!(error instanceof ControlError)) throw error;
      process.stderr.write(`popcorn: kill ${pid}: ${error.message}\n`);
      status = 1;
    }
  }
  return status;
}
