/**
 * `popcorn kernels [--json]`: each kernel of the running node's cluster (or of the node alone),
 * the node it belongs to, its processes, load, migrations in and out and message counters.
 */

import { controlRequest } from '../node/control-client.js';
import type { KernelEntry } from '../node/control-protocol.js';
import { table } from './ps.js';

export async function kernelsCommand(options: { json?: boolean }): Promise<number> {
  const answer = await controlRequest({ op: 'kernels' });
  const kernels = answer.kernels;
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify({ kernels, host: answer.host })}\n`);
    return 0;
  }
  const count = (k: KernelEntry, name: string): string => String(k.messages[name] ?? 0);
  const rows = kernels.map((k) => [
    String(k.kernel), String(k.node), String(k.processes), String(k.load), String(k.migrations.in), String(k.migrations.out),
    count(k, 'sent'), count(k, 'received'), count(k, 'relayed'), count(k, 'malformed'), count(k, 'unroutable'),
  ]);
  process.stdout.write(table(['KERNEL', 'NODE', 'PROCS', 'LOAD', 'MIG_IN', 'MIG_OUT', 'SENT', 'RECEIVED', 'RELAYED', 'MALFORMED', 'UNROUTABLE'], rows));
  return 0;
}
