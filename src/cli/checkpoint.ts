/**
 * `popcorn checkpoint PID FILE [--stop]`: write a process of the running node to FILE
 * (docs/checkpoint.md). The process runs on, or stays stopped with --stop (`popcorn kill -CONT
 * PID` resumes it); `popcorn restore FILE` starts it again.
 */

import { resolve } from 'node:path';
import { controlRequest } from '../node/control-client.js';
import { usageOf } from './run.js';
import { UsageError } from './usage.js';

export interface CheckpointOptions {
  stop?: boolean;
}

export async function checkpointCommand(pid: string, file: string, options: CheckpointOptions): Promise<number> {
  if (!/^\d+$/.test(pid) || Number(pid) === 0) throw new UsageError(`checkpoint: invalid pid ${pid}`);
  await controlRequest({ op: 'checkpoint', pid: Number(pid), file: resolve(file), stop: options.stop === true }).catch(usageOf);
  return 0;
}
