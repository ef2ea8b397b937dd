/** A node for the fuzz targets: its stdio discarded, its log kept (a fuzz run logs thousands of refusals). */
import { PassThrough } from 'node:stream';
import { PopcornNode, type NodeOptions } from '../../src/node/node.js';
import { TEST_CACHE } from '../cli-helpers.js';

process.env.POPCORN_CACHE_DIR ??= TEST_CACHE;

/** The last lines a fuzz node logged, for a failure's message. */
export class LogTail {
  private readonly lines: string[] = [];
  readonly log = (text: string): void => {
    this.lines.push(text);
    if (this.lines.length > 50) this.lines.shift();
  };
  text(): string {
    return this.lines.join('\n');
  }
}

export async function bootFuzzNode(kernels: number, logs: LogTail, options: NodeOptions = {}): Promise<PopcornNode> {
  const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough() };
  io.stdout.resume();
  io.stderr.resume();
  return PopcornNode.boot({ kernels, io, balance: false, log: logs.log, ...options });
}
