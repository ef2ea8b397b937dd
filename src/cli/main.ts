#!/usr/bin/env node
/**
 * The popcorn command. Each subcommand lives in its own file; this one only parses arguments
 * (commander) and turns errors into messages and exit statuses.
 */

import { Command, InvalidArgumentError } from 'commander';
import { runCommand } from './run.js';
import { UsageError } from './usage.js';
import { parseByteSize } from '../sizes.js';
import { bootCommand } from './boot.js';
import { psCommand } from './ps.js';
import { killCommand } from './kill.js';
import { migrateCommand } from './migrate.js';
import { checkpointCommand } from './checkpoint.js';
import { restoreCommand } from './restore.js';
import { kernelsCommand } from './kernels.js';
import { shutdownCommand } from './shutdown.js';
import { compileCommand } from './compile.js';
import { cacheCleanCommand, cacheListCommand } from './cache.js';
import { dashboardCommand } from './dashboard.js';
import { topCommand } from './top.js';
import { traceCommand } from './trace.js';

function integer(name: string, min: number): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}`);
    return n;
  };
}

function positive(name: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

/** A size in bytes: a number with an optional K, M, G or T (powers of 1024), e.g. 256M. */
function size(name: string): (value: string) => number {
  return (value) => {
    const bytes = parseByteSize(value);
    if (bytes === undefined) throw new InvalidArgumentError(`${name} must be a size such as 65536, 256M or 1G`);
    return bytes;
  };
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

/** The limit options of a node (src/kernel/limits.ts), for boot and run. */
function limitOptions(command: Command): Command {
  return command
    .option('--max-procs <n>', 'processes the node may hold, zombies included (default: 4096, less on a small machine)', integer('--max-procs', 1))
    .option('--max-memory <size>', 'linear memory per process, e.g. 256M (default: what the module declares, up to 4G)', size('--max-memory'))
    .option('--max-fds <n>', 'open fds per process (default 1024)', integer('--max-fds', 1));
}

const program = new Command()
  .name('popcorn')
  .description('A replicated-kernel operating system for WebAssembly (WASI) programs.')
  .enablePositionalOptions()
  .showHelpAfterError();

limitOptions(program
  .command('run')
  .description('run a WASI program on a machine of kernel instances')
  .argument('<module>', 'the WebAssembly module (.wasm)')
  .argument('[args...]', 'arguments for the program')
  .option('-k, --kernels <n>', 'number of kernel instances (default: one per CPU)', integer('--kernels', 1))
  .option('--on <kernel>', 'kernel to start the program on', integer('--on', 0))
  .option('--dir <HOST[::GUEST]>', 'grant access to a host directory, as GUEST (repeatable)', collect, [])
  .option('--env <NAME[=VAL]>', 'set an environment variable for the program (repeatable)', collect, [])
  .option('--slice-ms <ms>', 'scheduler time slice in milliseconds', positive('--slice-ms'))
  .option('--no-balance', 'do not move processes between kernels to even out their load')
  .option('-d, --detach', 'start the program on the running node, print its PID and return'))
  .passThroughOptions()
  .action(async (module: string, args: string[], options) => {
    process.exitCode = await runCommand(module, args, options);
  });

limitOptions(program
  .command('boot')
  .description('start a node in the background, with a control socket')
  .option('-k, --kernels <n>', 'number of kernel instances (default: one per CPU)', integer('--kernels', 1))
  .option('--slice-ms <ms>', 'scheduler time slice in milliseconds', positive('--slice-ms'))
  .option('--no-balance', 'do not move processes between kernels to even out their load')
  .option('--listen <host:port>', 'accept other nodes of a cluster on exactly this address (needs --secret-file)')
  .option('--join <host:port>', 'join the cluster of the node listening there (needs --listen)')
  .option('--secret-file <path>', "the cluster's shared secret (a file only its owner can read)")
  .option('--http <host:port>', 'serve the dashboard and /metrics there (loopback unless told otherwise)')
  .option('--foreground', 'run the node in this process (what boot starts in the background)'))
  .action(async (options) => {
    process.exitCode = await bootCommand(options);
  });

program
  .command('ps')
  .description('list every process of every kernel of the running node')
  .option('--json', 'one JSON array')
  .action(async (options) => {
    process.exitCode = await psCommand(options);
  });

program
  .command('kill')
  .description('send a signal (default TERM) to processes: kill [-SIGNAL | -s SIGNAL] PID…')
  .argument('<words...>', '[-SIGNAL | -s SIGNAL] PID…')
  .allowUnknownOption()
  .helpOption(false)
  .action(async (words: string[]) => {
    process.exitCode = await killCommand(words);
  });

program
  .command('migrate')
  .description('move a running process to another kernel: migrate PID KERNEL')
  .argument('<pid>', 'the process')
  .argument('<kernel>', 'the kernel index to move it to')
  .action(async (pid: string, kernel: string) => {
    process.exitCode = await migrateCommand(pid, kernel);
  });

program
  .command('checkpoint')
  .description('write a process of the running node to FILE; it runs on unless --stop: checkpoint PID FILE')
  .argument('<pid>', 'the process')
  .argument('<file>', 'the checkpoint file to write')
  .option('--stop', 'leave the process stopped after the checkpoint (popcorn kill -CONT resumes it)')
  .action(async (pid: string, file: string, options) => {
    process.exitCode = await checkpointCommand(pid, file, options);
  });

program
  .command('restore')
  .description("start a checkpointed process again, as a new process with this command's stdio")
  .argument('<file>', 'the checkpoint file')
  .option('--on <kernel>', 'kernel to restore it on', integer('--on', 0))
  .option('-k, --kernels <n>', 'restore on a node embedded in this command, of n kernels', integer('--kernels', 1))
  .option('-d, --detach', 'restore it on the running node, print its PID and return')
  .action(async (file: string, options) => {
    process.exitCode = await restoreCommand(file, options);
  });

program
  .command('kernels')
  .description("show each kernel's processes, load and message counters")
  .option('--json', 'one JSON object')
  .action(async (options) => {
    process.exitCode = await kernelsCommand(options);
  });

program
  .command('compile')
  .description('instrument programs ahead of time into the cache, so their first run starts at once')
  .argument('<modules...>', 'the WebAssembly modules (.wasm)')
  .action(async (modules: string[]) => {
    process.exitCode = await compileCommand(modules);
  });

const cache = program.command('cache').description('the instrumented-module cache (kept within POPCORN_CACHE_MAX, default 2G)');
cache
  .command('ls')
  .description('list the cached instrumented modules, most recently used first')
  .option('--json', 'one JSON object')
  .action((options) => {
    process.exitCode = cacheListCommand(options);
  });
cache
  .command('clean')
  .description('remove every cached instrumented module')
  .action(() => {
    process.exitCode = cacheCleanCommand();
  });

program
  .command('top')
  .description('a live view of the kernels, processes, messages and migrations (q quits)')
  .option('-n, --iterations <n>', 'stop after n refreshes', integer('--iterations', 1))
  .option('--interval <ms>', 'milliseconds between refreshes (default 1000)', positive('--interval'))
  .action(async (options) => {
    process.exitCode = await topCommand(options);
  });

program
  .command('dashboard')
  .description('start the web dashboard on the running node and print its URL (with the access token)')
  .option('--http <host:port>', 'where to serve it (default 127.0.0.1 on a free port)')
  .action(async (options) => {
    process.exitCode = await dashboardCommand(options);
  });

program
  .command('trace')
  .description('record slices, syscalls, messages and migrations for a while; write a Chrome trace (Perfetto)')
  .option('-o, --output <file>', 'the trace file to write (JSON)')
  .option('--seconds <s>', 'how long to record (default 5)', positive('--seconds'))
  .option('--pid <pid>', 'keep only this process (and the messages paired with its own)', integer('--pid', 1))
  .option('--status', 'print whether each kernel is recording, and what it holds')
  .action(async (options) => {
    process.exitCode = await traceCommand(options);
  });

program
  .command('shutdown')
  .description('stop the running node')
  .action(async () => {
    process.exitCode = await shutdownCommand();
  });

program.parseAsync(process.argv).catch((error: unknown) => {
  const err = error instanceof Error ? error : new Error(String(error));
  process.stderr.write(`popcorn: ${err.message}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
