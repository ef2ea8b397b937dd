/** `popcorn migrate PID KERNEL`: move a process of the running node to another kernel. */

import { controlRequest } from '../node/control-client.js';
import { usageOf } from './run.js';
import { UsageError } from './usage.js';

export async function migrateCommand(pid: string, kernel: string): Promise<number> {
  if (!/^\d+$/.test(pid)) throw new UsageError(`migrate: invalid pid ${pid}`);
  if (!/^\d+$/.test(kernel)) throw new UsageError(`migrate: invalid kernel ${kernel}`);
  await controlRequest({ op: 'migrate', pid: Number(pid), kernel: Number(kernel) }).catch(usageOf);
  return 0;
}
