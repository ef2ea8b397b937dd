/**
 * One table of signals (src/kernel/signals.ts) for everything that names or checks one: the
 * kill command, the control socket, the dashboard and proc_raise.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MAX_SIGNAL, SIGKILL, SIGSEGV, SIGTERM, isValidSignal, isWasiSignal, signalOfName } from '../src/kernel/signals.js';
import { parseKillArgs, parseSignal } from '../src/cli/kill.js';
import { UsageError } from '../src/cli/usage.js';

test('signals are named as Linux names them, with or without SIG, in any case', () => {
  assert.equal(signalOfName('TERM'), SIGTERM);
  assert.equal(signalOfName('sigkill'), SIGKILL);
  assert.equal(signalOfName('SEGV'), SIGSEGV);
  assert.equal(signalOfName('SYS'), MAX_SIGNAL);
  assert.equal(signalOfName('WINCH'), 28);
  assert.equal(signalOfName('NOPE'), undefined);
  assert.equal(signalOfName(''), undefined);
  assert.equal(signalOfName('SIG'), undefined);
});

test('valid numbers: 0 (exists?) to 31, for a process; 0 to 30 for proc_raise', () => {
  for (const n of [0, 1, 9, 31]) assert.equal(isValidSignal(n), true, String(n));
  for (const n of [-1, 32, 64, 1.5, Number.NaN, '9']) assert.equal(isValidSignal(n), false, String(n));
  assert.equal(isWasiSignal(30), true);
  assert.equal(isWasiSignal(31), false);
  assert.equal(isWasiSignal(-1), false);
});

test('popcorn kill takes a number or a name, and refuses what no process could be sent', () => {
  assert.equal(parseSignal('9'), SIGKILL);
  assert.equal(parseSignal('term'), SIGTERM);
  assert.throws(() => parseSignal('32'), UsageError);
  assert.throws(() => parseSignal('64'), UsageError);
  assert.throws(() => parseSignal('BOGUS'), /unknown signal 'BOGUS'/);
  assert.deepEqual(parseKillArgs(['1024']), { signal: SIGTERM, pids: [1024] });
  assert.deepEqual(parseKillArgs(['-KILL', '7', '8']), { signal: SIGKILL, pids: [7, 8] });
  assert.deepEqual(parseKillArgs(['-s', 'SIGUSR1', '7']), { signal: 10, pids: [7] });
});
