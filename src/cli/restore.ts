/**
 * `popcorn restore FILE`: start a checkpointed process again (docs/checkpoint.md), as a new
 * process with a new PID, with this command's stdio, and exit with its status — as `popcorn run`
 * does: through the running node if there is one, else on a node embedded in this command
 * (`--kernels` always gets one). `--on K` picks the kernel; `--detach` restores it on the running
 * node, prints its PID and returns.
 */

import { resolve } from 'node:path';
import { PopcornNode } from '../node/node.js';
import { ControlClient, connectControl, controlRequest } from '../node/control-client.js';
import type { ControlRequestInput } from '../node/control-requests.js';
import { readCheckpointFile } from '../node/checkpoint-file.js';
import { runOnNode, superviseEmbedded, usageOf } from './run.js';
import { UsageError } from './usage.js';

export interface RestoreOptions {
  on?: number;
  kernels?: number;
  detach?: boolean;
}

export async function restoreCommand(file: string, options: RestoreOptions): Promise<number> {
  const path = resolve(file);
  const request: ControlRequestInput<'restore'> = { op: 'restore', file: path, on: options.on };
  if (options.detach === true) {
    if (options.kernels !== undefined) throw new UsageError('--detach restores on the running node: --kernels does not apply');
    const answer = await controlRequest({ ...request, detach: true }).catch(usageOf);
    process.stdout.write(`${answer.pid}\n`);
    return 0;
  }
  if (options.kernels === undefined) {
    const socket = await connectControl();
    if (socket !== null) return runOnNode(new ControlClient(socket), request);
  }
  const checkpoint = readCheckpointFile(path);
  const node = await PopcornNode.boot({ kernels: options.kernels });
  try {
    if (options.on !== undefined && options.on >= node.kernels.length) {
      throw new UsageError(`--on ${options.on}: this node has kernels 0–${node.kernels.length - 1}`);
    }
    const pid = await node.restore(checkpoint, { kernel: options.on, source: path });
    return await superviseEmbedded(node, pid);
  } finally {
    await node.shutdown();
  }
}
