/**
 * `popcorn trace`: a pipeline across three kernels, traced for 2 s, gives a Chrome trace with
 * slices on every kernel, syscalls, request/reply flows between kernels; and without a trace the
 * kernels record nothing.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { example } from './cli-helpers.js';
import { SPIN, bootObserved } from './observe-helpers.js';
import type { ChromeEvent, ChromeTrace } from '../src/node/trace.js';

test('popcorn trace: slices, syscalls and message flows of a pipeline across 3 kernels', async () => {
  const node = await bootObserved(3);
  const data = mkdtempSync(join(tmpdir(), 'popcorn-trace-'));
  try {
    writeFileSync(join(data, 'in'), 'x'.repeat(100_000));
    const pipeline = ['run', '--on', '0', '--dir', `${example('.')}::/bin`, '--dir', `${data}::/data`, example('sh.wasm'), '-c', 'cat /data/in | @1 cat | @2 cat'];
    // Once untraced (it instruments the programs); then the kernels hold nothing.
    const first = await node.cli(pipeline);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.stdout.length, 100_000);
    const status = await node.cli(['trace', '--status']);
    assert.equal(status.status, 0, status.stderr);
    assert.deepEqual(JSON.parse(status.stdout), [0, 1, 2].map((kernel) => ({ kernel, recording: false, records: 0 })));

    const file = join(data, 'trace.json');
    const tracing = node.cli(['trace', '-o', file, '--seconds', '2']);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const traced = await node.cli(pipeline);
    assert.equal(traced.status, 0, traced.stderr);
    assert.equal(traced.stdout.length, 100_000);
    const done = await tracing;
    assert.equal(done.status, 0, done.stderr);
    assert.match(done.stderr, /events from 3 kernels written to/);

    const trace = JSON.parse(readFileSync(file, 'utf8')) as ChromeTrace;
    assert.equal(trace.displayTimeUnit, 'ms');
    const events = trace.traceEvents;
    for (const e of events) {
      assert.ok(typeof e.ph === 'string' && typeof e.name === 'string', JSON.stringify(e));
      assert.ok(Number.isFinite(e.ts) && Number.isInteger(e.pid) && Number.isInteger(e.tid), JSON.stringify(e));
      if (e.ph === 'X') assert.ok(Number.isFinite(e.dur) && (e.dur as number) >= 0, JSON.stringify(e));
    }
    const names = events.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => (e.args as { name: string }).name);
    assert.deepEqual(names.sort(), ['kernel 0', 'kernel 1', 'kernel 2']);
    const slices = events.filter((e) => e.ph === 'X' && e.cat === 'sched');
    for (const k of [0, 1, 2]) assert.ok(slices.some((e) => e.pid === k && e.name === 'cat.wasm' && e.tid > 0), `a cat slice on kernel ${k}`);
    assert.ok(slices.some((e) => e.pid === 0 && e.name === 'sh.wasm'));
    const syscalls = events.filter((e) => e.ph === 'X' && e.cat === 'syscall');
    assert.ok(syscalls.some((e) => e.name === 'fd_write' && (e.args as { errno: number }).errno === 0), 'an fd_write');
    // Each syscall lies within a slice of its process on its kernel.
    for (const s of syscalls) {
      assert.ok(slices.some((e) => e.pid === s.pid && e.tid === s.tid && e.ts <= s.ts + 1 && s.ts + (s.dur as number) <= e.ts + (e.dur as number) + 1), JSON.stringify(s));
    }
    // Flows: each id has one start and one finish, on different kernels for some.
    const flows = new Map<number, ChromeEvent[]>();
    for (const e of events.filter((e) => e.ph === 's' || e.ph === 'f')) flows.set(e.id as number, [...(flows.get(e.id as number) ?? []), e]);
    assert.ok(flows.size > 0);
    for (const pair of flows.values()) assert.deepEqual(pair.map((e) => e.ph).sort(), ['f', 's']);
    assert.ok([...flows.values()].some(([a, b]) => a!.pid !== b!.pid), 'a flow between kernels');

    // --pid: only that process, here moving from kernel 1 to kernel 2 while traced.
    const spin = await node.start(SPIN, 1);
    const other = await node.start(SPIN, 0);
    const only = join(data, 'only.json');
    const tracingOne = node.cli(['trace', '-o', only, '--seconds', '1.5', '--pid', String(spin)]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    assert.equal((await node.cli(['migrate', String(spin), '2'])).status, 0);
    assert.equal((await tracingOne).status, 0);
    const one = (JSON.parse(readFileSync(only, 'utf8')) as ChromeTrace).traceEvents;
    const spinSlices = one.filter((e) => e.cat === 'sched');
    assert.ok(spinSlices.some((e) => e.pid === 1) && spinSlices.some((e) => e.pid === 2), 'slices before and after the move');
    assert.ok(spinSlices.every((e) => e.tid === spin && e.name === 'spin.wasm'));
    assert.ok(!one.some((e) => e.tid === other));
    const moved = one.find((e) => e.name === 'migrate');
    assert.deepEqual(moved?.args, { ...(moved?.args as object), pid: spin, from: 1, to: 2 });
    await node.cli(['kill', '-9', String(spin)]);
    await node.cli(['kill', '-9', String(other)]);

    // Stopped: nothing recorded any more.
    const after = await node.cli(['trace', '--status']);
    assert.deepEqual(JSON.parse(after.stdout), [0, 1, 2].map((kernel) => ({ kernel, recording: false, records: 0 })));
  } finally {
    if (process.env.KEEP_TRACE === undefined) rmSync(data, { recursive: true, force: true });
    else console.log(data);
    await node.cleanup();
  }
});
