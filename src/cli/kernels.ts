/** `popcorn kernels [--json]`: each kernel of the running node, its processes, load and message counters. */

import { controlRequest } from '../node/control.js';
import { table } from './ps.js';

interface KernelEntry {
  kernel: number;
  processes: number;
  load: number;
  messages: Record<string, number>;
}

export async function kernelsCommand(options: { json?: boolean }): Promise<number> {
  const answer = await controlRequest({ op: 'kernels' });
  const kernels = answer.kernels as KernelEntry[];
  if (options.json === true) {
    process.stdout.write(`${JSON.stringify({ kernels, host: answer.host })}\n`);
    return 0;
  }
  const count = (k: KernelEntry, name: string): string => String(k.messages[name] ?? 0);
  const rows = kernels.map((k) => [
    String(k.kernel), String(k.processes), String(k.load),
    count(k, 'sent'), count(k, 'received'), count(k, 'relayed'), count(k, 'malformed'), count(k, 'unroutable'),
  ]);
  process.stdout.write(table(['KERNEL', 'PROCS', 'LOAD', 'SENT', 'RECEIVED', 'RELAYED', 'MALFORMED', 'UNROUTABLE'], rows));
  return 0;
}
