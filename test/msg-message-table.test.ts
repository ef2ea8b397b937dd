/**
 * The messaging layer is typed over any message table, not only the kernels' protocol: a table
 * of its own carries requests and replies through a Messenger, and tables the wire cannot carry
 * are refused when compiled.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compileTable, TRANSPORT_MESSAGES, type MessageTable } from '../src/msg/message-table.js';
import { Messenger } from '../src/msg/messenger.js';
import { RemoteError } from '../src/msg/requests.js';

const GREETINGS = {
  ...TRANSPORT_MESSAGES,
  hail: { id: 10, payload: { name: 'str', times: 'u32' }, reply: 'answer' },
  answer: { id: 11, payload: { text: 'str' } },
  wave: { id: 12, payload: {} },
} as const;

test('a Messenger carries a table of its own: requests, replies, one-way messages and errors', () => {
  const m = new Messenger(GREETINGS, 7);
  const waves: number[] = [];
  m.on('wave', (_p, from) => waves.push(from.src));
  m.on('hail', (p, from) => {
    if (p.times === 0) m.fail(from, 'EINVAL', 'say it at least once');
    else m.reply(from, 'hail', { text: `${'hello '.repeat(p.times)}${p.name}` });
  });
  const answers: (string | Error)[] = [];
  m.request(7, 'hail', { name: 'kernel', times: 2 }, 1000, (error, reply) => answers.push(error ?? (reply as { text: string }).text));
  m.request(7, 'hail', { name: 'kernel', times: 0 }, 1000, (error) => answers.push(error as Error));
  m.send(7, 'wave', {});
  while (m.poll() > 0);
  assert.deepEqual(waves, [7]);
  assert.equal(answers[0], 'hello hello kernel');
  assert.ok(answers[1] instanceof RemoteError);
  assert.equal((answers[1] as RemoteError).code, 'EINVAL');
  assert.equal(m.messageName(10), 'hail');
  assert.equal(m.messageName(99), 'type 99');
});

test('tables the wire cannot carry are refused', () => {
  const clash = { ...TRANSPORT_MESSAGES, a: { id: 10, payload: {} }, b: { id: 10, payload: {} } } satisfies MessageTable;
  assert.throws(() => compileTable(clash), /a and b share id 10/);
  const dangling = { ...TRANSPORT_MESSAGES, ask: { id: 10, payload: {}, reply: 'nobody' } } satisfies MessageTable;
  assert.throws(() => compileTable(dangling), /ask is answered by nobody/);
  const noTransport = { ask: { id: 10, payload: {} } } satisfies MessageTable;
  assert.throws(() => compileTable(noTransport), /transport's fragment with id 1/);
  const moved = { ...TRANSPORT_MESSAGES, error: { id: 9, payload: { code: 'str', message: 'str' } } } satisfies MessageTable;
  assert.throws(() => compileTable(moved), /transport's error with id 3/);
});
