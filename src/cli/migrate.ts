/** `popcorn migrate PID KERNEL`: move a process of the running node to another kernel. */

import { ControlError, controlRequest } from '../node/control.js';
import { UsageError } from './usage.js';

export async function migrateCommand(pid: string, kernel: string): Promise<number> {
  if (!/^\d+$/.test(pid)) throw new UsageError(`migrate: invalid pid ${pid}`);
  if (!/^\d+$/.test(kernel)) throw new UsageError(`migrate: invalid kernel ${kernel}`);
  try {
    await controlRequest({ op: 'migrate', pid: Number(pid), kernel: Number(kernel) });
  } catch (error) {
    if (error instanceof ControlError && error.usage) throw new UsageError(error.message);
    throw error;
  }
  return 0;
}
