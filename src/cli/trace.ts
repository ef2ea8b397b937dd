/**
 * `popcorn trace -o FILE [--seconds S] [--pid PID]`: record what the running node's kernels do
 * for S seconds — time slices, blocking syscalls, messages with request/reply flows, migrations —
 * and write it as a Chrome trace (open it in ui.perfetto.dev or chrome://tracing). One `trace`
 * request on the control socket (src/node/trace.ts). `--status` shows whether kernels record.
 */

import { writeFileSync } from 'node:fs';
import { controlRequest } from '../node/control-client.js';
import { UsageError } from './usage.js';

export interface TraceOptions {
  output?: string;
  seconds?: number;
  pid?: number;
  status?: boolean;
}

export async function traceCommand(options: TraceOptions): Promise<number> {
  if (options.status === true) {
    const answer = await controlRequest({ op: 'trace', status: true });
    if (!('kernels' in answer)) throw new Error('the node answered a trace status request with a trace');
    process.stdout.write(`${JSON.stringify(answer.kernels)}\n`);
    return 0;
  }
  if (options.output === undefined) throw new UsageError('popcorn trace needs -o FILE');
  const seconds = options.seconds ?? 5;
  const answer = await controlRequest({ op: 'trace', seconds, ...(options.pid === undefined ? {} : { pid: options.pid }) });
  if (!('trace' in answer)) throw new Error('the node answered a trace request with its status');
  const trace = answer.trace;
  writeFileSync(options.output, JSON.stringify(trace));
  const dropped = trace.otherData.kernels.reduce((sum, k) => sum + k.dropped, 0);
  process.stderr.write(`${trace.traceEvents.length} events from ${trace.otherData.kernels.length} kernels written to ${options.output}${dropped > 0 ? ` (${dropped} oldest records dropped)` : ''}\n`);
  return 0;
}
