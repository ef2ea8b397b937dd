/**
 * Every inter-kernel message type, declared once with its payload schema (compare Barrelfish's
 * Flounder interfaces and Popcorn's DEFINE_PCN_KMSG). The payload's TypeScript type is inferred
 * from the schema; services register handlers by message name. A message that expects an answer
 * names its `reply` type; the answer travels with the request's id.
 *
 * Ids are part of the wire format: never renumber, only add. Bump PROTOCOL_VERSION when a schema
 * changes incompatibly; peers compare it in the cluster's JSON
 * handshake (src/node/cluster.ts).
 */

import { variant } from './msg/codec.js';
import {
  TRANSPORT_MESSAGES,
  type MessageTable,
  type NameOf,
  type PayloadOf,
  type ReplyNameOf,
  type ReplyPayloadOf,
  type RequestOf,
} from './msg/message-table.js';

export const PROTOCOL_VERSION = 11;

/** A file's attributes (WASI `$filestat`), as its home reports them after each operation. */
const FILESTAT = {
  dev: 'u64', ino: 'u64', filetype: 'u8', nlink: 'u64', size: 'u64', atim: 'u64', mtim: 'u64', ctim: 'u64',
} as const;

/**
 * What a kernel needs to use a file of another kernel at once, without asking its home
 * (src/services/file-deputy.ts): carried in a remote_file record.
 */
export const REMOTE_FILE_STATE = {
  /** The kernel the home counted this reference for: who gives it back if the record is not used. */
  holder: 'u32',
  readable: 'bool', writable: 'bool',
  /** The attributes as last known (the receiver's attribute cache starts from them). */
  stat: FILESTAT,
  /** A write error the home reported that no syscall has returned yet (errno; 0: none). */
  error: 'u16',
  /** A stream's (FIFO, device) bytes read from the home and not yet by the process: read first. */
  unread: 'bytes',
} as const;

/**
 * How an fd travels to another kernel (src/services/fd-transfer.ts): what every fd has, and what
 * its kind of description is named by, each kind read by its carrier (src/services/*-carrier.ts).
 * New kinds go at the end of the variant.
 */
const FD_RECORD = {
  fd: 'u32', rights: 'f64', inheriting: 'f64', fdflags: 'u16',
  desc: variant('kind', {
    /** A stream of host `host`; `unread`: input this kernel received and the process did not read. */
    host_input: { host: 'u32', stream: 'u32', unread: 'bytes' },
    host_output: { host: 'u32', stream: 'u32' },
    /** A pipe end, named at its home; a read end's `unread`: what this kernel's proxy received and the process did not read. */
    pipe_read: { home: 'u32', pipe: 'u32', unread: 'bytes' },
    pipe_write: { home: 'u32', pipe: 'u32' },
    /** A file of this node by a host fd the receiver owns, at `offset`. */
    host_file: { hostFd: 'u32', readable: 'bool', writable: 'bool', offset: 'f64' },
    /** A file kept open by kernel `home` (its file deputy's `handle`), with what its holder needs to use it at once. */
    remote_file: { home: 'u32', handle: 'u32', offset: 'f64', state: REMOTE_FILE_STATE },
    /** A directory of this node by a host fd the receiver owns; `path`: where it was opened (for messages only). */
    directory_handle: { hostFd: 'u32', path: 'str' },
    /** A directory kept open by kernel `home` (its directory deputy's `handle`); `preopen`: its preopen name, or ''. */
    remote_directory: { home: 'u32', handle: 'u32', preopen: 'str' },
    /** In a checkpoint: a file by host path, opened again (into a host_file) when it is restored. */
    file_path: { path: 'str', readable: 'bool', writable: 'bool', offset: 'f64' },
    /** In a checkpoint: a directory by host path. */
    directory_path: { path: 'str' },
  }),
} as const;

/**
 * A whole process, stopped between two instructions (src/kernel/image.ts): what a migration
 * carries, and the body of a checkpoint file — so a change here is also a new checkpoint file
 * format: bump CHECKPOINT_VERSION in src/node/checkpoint-file.ts.
 */
export const PROCESS_IMAGE = {
  pid: 'u32', ppid: 'u32', name: 'str', args: ['str'], env: ['str'], dirs: [{ host: 'str', guest: 'str' }],
  /** Content hash of the original module. */
  hash: 'str',
  /** Linear memory (without popcorn's scratch pages), the unwound wasm stack, the exported mutable globals. */
  memory: 'bytes', stack: 'bytes', started: 'bool',
  /**
   * The memory went apart from the image (migration): handed over through the kernels' port
   * within a node, or sent ahead as a bulk transfer to another node. `memory` is empty.
   */
  handedOver: 'bool',
  globals: [{ name: 'str', wide: 'bool', number: 'f64', bigint: 'i64' }],
  fds: [FD_RECORD],
  /** Signal dispositions (kind 1 ignore, 2 handler at `index`) and caught signals not yet handled. */
  dispositions: [{ signal: 'u8', kind: 'u8', index: 'u32' }],
  pending: ['u8'],
  children: [{ pid: 'u32', ended: 'bool', status: 'i32', signal: 'u8', trap: 'str' }],
  cpuMs: 'f64', stopped: 'bool',
  /** The interrupted syscall's deadlines (absolute, monotonic ns), sched_yield marker, and whether it was popcorn_migrate. */
  deadlines: ['i64'], yielded: 'bool', migrating: 'bool',
  /** When the source stopped it (ms since the epoch, sub-ms precise): the destination measures the move. */
  stoppedAt: 'f64',
  /** How many moves it has made, this one included: its origin orders the arrivals it hears of by it. */
  moves: 'u32',
} as const;

/**
 * A path operation on a directory of another node, as its home runs it (src/services/dir-deputy.ts).
 * `to` is the home's handle of the second directory of a rename or link.
 */
const DIR_CALL = variant('op', {
  open: { path: 'str', dirflags: 'u32', oflags: 'u32', rights: 'f64', inheriting: 'f64', fdflags: 'u32' },
  stat: { path: 'str', follow: 'bool' },
  mkdir: { path: 'str' },
  rmdir: { path: 'str' },
  unlink: { path: 'str' },
  rename: { path: 'str', to: 'u32', path2: 'str' },
  link: { path: 'str', follow: 'bool', to: 'u32', path2: 'str' },
  symlink: { path: 'str', target: 'str' },
  readlink: { path: 'str' },
  times: { path: 'str', follow: 'bool', atim: 'u64', mtim: 'u64', fst: 'u32' },
  list: {},
});

export const MESSAGES = {
  // ---- messaging layer (src/msg/message-table.ts): fragment (id 1) and error (id 3) ----
  ...TRANSPORT_MESSAGES,
  // Id 2 was `hello`, never sent: nodes greet each other with a JSON line before the link carries
  // frames (src/node/cluster.ts). Ids are not reused.
  /** Round-trip probe, used by tests and benchmarks. */
  ping: { id: 4, payload: { seq: 'u32', data: 'bytes' }, reply: 'pong' },
  pong: { id: 5, payload: { seq: 'u32', data: 'bytes' } },

  // ---- node and kernel lifecycle (src/node, src/kernel/kernel.ts) ----
  /** A kernel finished booting and serves messages. */
  kernel_ready: { id: 20, payload: { kernel: 'u32' } },
  /** Stop: the kernel ends its processes (SIGKILL) and its loop, then answers. */
  shutdown: { id: 21, payload: {}, reply: 'shutdown_done' },
  shutdown_done: { id: 22, payload: { kernel: 'u32' } },
  /** Something a kernel wants the operator to see (warnings, guest faults it survived). */
  log: { id: 23, payload: { level: 'u8', text: 'str' } },

  // ---- processes (src/services/process.ts) ----
  /**
   * Start a process on the receiving kernel from a module in the instrumented-module cache. The
   * kernel is the process's origin: it allocates the PID (src/kernel/pids.ts), keeps the
   * process's record (parent, location, exit status until reaped) and answers with the PID.
   */
  proc_start: {
    id: 30,
    payload: {
      /** The parent process's PID; 0 when a node starts it (then `notify` hears of its end). */
      ppid: 'u32',
      /** The endpoint that gets proc_exited when ppid is 0 (the host of a run session). */
      notify: 'u32',
      /** Content hash of the original module; the kernel loads the instrumented one by it. */
      hash: 'str',
      /** The name shown in ps and in trap messages (usually the module's file name). */
      name: 'str',
      args: ['str'],
      env: ['str'],
      dirs: [{ host: 'str', guest: 'str' }],
      /** The child's fds (fd-transfer.ts): host streams, pipe ends, files, directories. */
      fds: [FD_RECORD],
    },
    reply: 'proc_started',
  },
  proc_started: { id: 31, payload: { pid: 'u32', kernel: 'u32' } },
  /**
   * A process ended; sent to its parent: the `notify` endpoint of a node-started process, or the
   * parent process (routed through the parent's origin kernel). `signal` is 0 for a normal exit;
   * `trap` holds the trap message and wasm backtrace when it trapped (then status is 128 +
   * SIGABRT, as wasmtime exits).
   */
  proc_exited: { id: 32, payload: { pid: 'u32', ppid: 'u32', status: 'i32', signal: 'u8', trap: 'str' } },
  /** Deliver a signal to a process, at the kernel where it runs (sent there by its origin). */
  proc_kill: { id: 33, payload: { pid: 'u32', signal: 'u8' } },
  /**
   * Signal a process, asked of its origin kernel (the PID says which): the origin answers whether
   * the process exists (error ESRCH if not) and forwards proc_kill to where it runs.
   */
  proc_signal: { id: 34, payload: { pid: 'u32', signal: 'u8' }, reply: 'proc_signaled' },
  proc_signaled: { id: 35, payload: { pid: 'u32' } },
  /** To a process's origin, from where it ran: it ended (the origin then tells the parent). */
  proc_ended: { id: 36, payload: { pid: 'u32', status: 'i32', signal: 'u8', trap: 'str' } },
  /** To a process's origin, from its parent: its exit status was collected; the PID is free. */
  proc_reaped: { id: 37, payload: { pid: 'u32' } },
  /** To a process's origin (then on to where it runs): its parent is now `ppid` (1: init). */
  proc_reparent: { id: 38, payload: { pid: 'u32', ppid: 'u32' } },
  /**
   * From a kernel to its node's host: make the program at host path `path` runnable (validate,
   * instrument, cache) and answer with its content hash. Keeps binaryen off kernel threads.
   */
  module_prepare: { id: 45, payload: { path: 'str' }, reply: 'module_prepared' },
  module_prepared: { id: 46, payload: { hash: 'str' } },
  /**
   * From a kernel to its node's host: get module `hash` into this node's cache from the node of
   * `from` (an endpoint that has it: whoever asked for the process). Answered once it is there.
   */
  module_fetch: { id: 90, payload: { hash: 'str', from: 'u32' }, reply: 'module_fetched' },
  module_fetched: { id: 91, payload: { hash: 'str' } },
  /**
   * Host to host: the instrumented module `hash` and its InstrumentInfo (JSON), from the cache.
   * Members of a cluster run the same instrumentation (checked when they join).
   */
  module_get: { id: 92, payload: { hash: 'str' }, reply: 'module_got' },
  module_got: { id: 93, payload: { wasm: 'bytes', info: 'str' } },

  // ---- migration (src/services/migration.ts) ----
  /** Take over a process (from the kernel it ran on) and run it on from where it stopped. */
  proc_migrate: { id: 70, payload: PROCESS_IMAGE, reply: 'proc_migrated' },
  proc_migrated: { id: 71, payload: { pid: 'u32' } },
  /**
   * To a process's origin, from where it arrived: it runs on `location` now, after its move
   * number `moves` (arrivals are told on different links, so an older one can come later).
   */
  proc_moved: { id: 72, payload: { pid: 'u32', location: 'u32', moves: 'u32' } },
  /** Move `pid` to kernel index `kernel` (asked of its origin, which passes it to where it runs); answered once it runs there. */
  proc_move: { id: 73, payload: { pid: 'u32', kernel: 'u32' }, reply: 'proc_moved_ok' },
  proc_moved_ok: { id: 74, payload: { pid: 'u32', kernel: 'u32' } },
  /**
   * To a process's origin, from a kernel it arrived on from another node, before it runs or is
   * listed there: may it run on `location` after its move number `moves`? Refused (ESRCH) when
   * the origin has already reported it ended (lost with its source node).
   */
  proc_arrival: { id: 126, payload: { pid: 'u32', location: 'u32', moves: 'u32' }, reply: 'proc_arrival_ok' },
  proc_arrival_ok: { id: 127, payload: { pid: 'u32' } },

  /** A kernel's load (processes wanting the CPU), sent to every other kernel by the balancer. */
  kernel_load: { id: 75, payload: { kernel: 'u32', load: 'u32' } },
  // Id 76 was proc_memory: a process's memory now goes to another node as a bulk transfer
  // (src/msg/bulk.ts, the transport's `bulk`). Ids are not reused.

  // ---- the cluster (src/node/cluster.ts; a node's joining handshake is there, before these) ----
  /**
   * Host → its kernels, whenever nodes join or leave: every kernel of the cluster, in the order
   * that gives them their indices (popcorn_spawn's kernel, `popcorn migrate PID K`).
   */
  cluster_view: { id: 120, payload: { kernels: ['u32'] } },
  /**
   * Host → its kernels: node `node` is gone (its link closed, or it missed heartbeats). Requests
   * waiting on its kernels fail; its processes are reported lost to their parents.
   */
  node_lost: { id: 121, payload: { node: 'u32', reason: 'str' } },
  /** Host → host, every HEARTBEAT_MS (src/node/cluster.ts): "this node is alive". */
  node_heartbeat: { id: 122, payload: { node: 'u32' } },

  // ---- checkpoint/restore (src/services/checkpoint.ts) ----
  /**
   * Capture `pid` at its next safe point without moving it (asked of its origin, which passes it
   * to where it runs); it runs on, or stays stopped (as by SIGSTOP) when `stop`. Answered with
   * its image as a file holds it: fds by host path (file_path, directory_path; a host stream's
   * `stream` is the stdio fd, 0–2, whose stream it is), no children, deadlines as ns left at the
   * capture, `stoppedAt` the capture time (ms since the epoch).
   */
  proc_checkpoint: { id: 80, payload: { pid: 'u32', stop: 'bool' }, reply: 'proc_checkpointed' },
  proc_checkpointed: { id: 81, payload: PROCESS_IMAGE },
  /**
   * Start a process again from a checkpoint image on the receiving kernel, which becomes its
   * origin: a new PID, ppid 0 (`notify` hears of its end). The image's fds are proc_start's (host
   * streams, host fds the node opened), its deadlines still ns left.
   */
  proc_restore: { id: 82, payload: { notify: 'u32', image: PROCESS_IMAGE }, reply: 'proc_restored' },
  proc_restored: { id: 83, payload: { pid: 'u32', kernel: 'u32' } },

  // ---- host streams: the terminal, files and pipes of the popcorn command (src/node/streams.ts) ----
  /** Bytes for a host stream (stdout, stderr). The host answers with stream_credit once written. */
  stream_write: { id: 40, payload: { stream: 'u32', data: 'bytes' } },
  /** That many bytes of the kernel's writes to a stream are out of the pipeline: flow control. */
  stream_credit: { id: 41, payload: { stream: 'u32', bytes: 'u32' } },
  /** A reader on the kernel waits for a host stream (stdin): send what there is. */
  stream_want: { id: 42, payload: { stream: 'u32' } },
  /** Bytes read from a host stream; `eof` once it has ended. */
  stream_data: { id: 43, payload: { stream: 'u32', data: 'bytes', eof: 'bool' } },
  /**
   * An end of the stream leaves the kernel (a spawn, a migration): send it no more input unless
   * it asks again. Answered after the kernel's earlier writes were taken and the input already
   * sent to it, so what the end reads and writes at its next kernel comes after.
   */
  stream_handoff: { id: 44, payload: { stream: 'u32' }, reply: 'stream_handed' },
  stream_handed: { id: 47, payload: { stream: 'u32' } },

  // ---- pipes across kernels (src/services/pipe.ts) ----
  // A pipe lives on the kernel that created it (its home); ends given to processes on other
  // kernels are proxies that talk to the home. `home` + `pipe` name a pipe system-wide.
  /**
   * Count one more reference to an end at the home, for kernel `holder`, which will take it over
   * (before the end is handed on to it); answered once counted.
   */
  pipe_attach: { id: 50, payload: { home: 'u32', pipe: 'u32', end: 'u8', holder: 'u32' }, reply: 'pipe_attached' },
  pipe_attached: { id: 51, payload: { home: 'u32', pipe: 'u32' } },
  /** A proxy dropped `refs` references to an end. */
  pipe_detach: { id: 52, payload: { home: 'u32', pipe: 'u32', end: 'u8', refs: 'u32' } },
  /** Bytes from a remote writer, within the credit the home granted. */
  pipe_write: { id: 53, payload: { home: 'u32', pipe: 'u32', data: 'bytes' } },
  /** To a writer's kernel: that many of its bytes left the pipe; it may send as many more. */
  pipe_credit: { id: 54, payload: { home: 'u32', pipe: 'u32', bytes: 'u32' } },
  /** From a reader's kernel: it may take `bytes` more; send data as it comes. */
  pipe_want: { id: 55, payload: { home: 'u32', pipe: 'u32', bytes: 'u32' } },
  /** To a reader's kernel: bytes from the pipe; `eof` once the last writer has closed and all was sent. */
  pipe_data: { id: 56, payload: { home: 'u32', pipe: 'u32', data: 'bytes', eof: 'bool' } },
  /** To a writer's kernel: the last reader closed; writes fail with EPIPE. */
  pipe_broken: { id: 57, payload: { home: 'u32', pipe: 'u32' } },
  /** From a reader's kernel handing its end on: send nothing more; answered after all that was sent. */
  pipe_pause: { id: 58, payload: { home: 'u32', pipe: 'u32' }, reply: 'pipe_paused' },
  pipe_paused: { id: 59, payload: { home: 'u32', pipe: 'u32' } },
  /** A reference counted for `holder` will not be used (a spawn or move that carried it failed). */
  pipe_discard: { id: 125, payload: { home: 'u32', pipe: 'u32', end: 'u8', holder: 'u32' } },

  // ---- files across nodes: the deputy (src/services/file-deputy.ts) ----
  // A host file given to a process on another node stays open at the kernel that gave it (its
  // home), in its deputy table; the other kernels use it by these requests, naming it by
  // `handle`. Each kernel's description keeps its own offset and sends it with every read and
  // write. The home counts references per holding kernel. A handle the home does not know, or
  // one the asking kernel holds no reference to, gets EBADF; a failed operation, its errno's name.
  /** Count one more reference for kernel `holder` (asked by a holder, before it hands a record on); answered once counted. */
  file_attach: { id: 100, payload: { handle: 'u32', holder: 'u32' }, reply: 'file_attached' },
  file_attached: { id: 101, payload: { handle: 'u32' } },
  /** Give back `refs` references counted for `holder`: its description closed, or a record for it was not delivered. */
  file_detach: { id: 102, payload: { handle: 'u32', holder: 'u32', refs: 'u32' } },
  /** Read up to `len` bytes at `position` (a stream, a FIFO or a device, ignores it). */
  file_read: { id: 103, payload: { handle: 'u32', position: 'f64', len: 'u32' }, reply: 'file_data' },
  /** The bytes read (fewer than asked near the end of the file, none at it) and the attributes after. */
  file_data: { id: 104, payload: { data: 'bytes', stat: FILESTAT } },
  /** Write all of `data` at `position`, or at the end when `append`. A kernel has at most WRITE_CREDIT bytes unanswered. */
  file_write: { id: 105, payload: { handle: 'u32', position: 'f64', append: 'bool', data: 'bytes' }, reply: 'file_written' },
  /** Written, up to `end` (the offset after the last byte). */
  file_written: { id: 106, payload: { end: 'f64', stat: FILESTAT } },
  /** ftruncate to `size`. */
  file_set_size: { id: 107, payload: { handle: 'u32', size: 'f64' }, reply: 'file_changed' },
  /** Make the file at least `offset` + `len` bytes long. */
  file_allocate: { id: 108, payload: { handle: 'u32', offset: 'f64', len: 'f64' }, reply: 'file_changed' },
  /** Set the access and modification times; each `how` is 0 (leave it), 1 (now) or 2 (the ns given). */
  file_set_times: { id: 109, payload: { handle: 'u32', atim: 'u64', mtim: 'u64', atimHow: 'u8', mtimHow: 'u8' }, reply: 'file_changed' },
  /** fsync, or fdatasync when `dataOnly`. */
  file_sync: { id: 110, payload: { handle: 'u32', dataOnly: 'bool' }, reply: 'file_changed' },
  /** Done: the attributes after. */
  file_changed: { id: 111, payload: { stat: FILESTAT } },

  // ---- directories across nodes: the directory deputy (src/services/dir-deputy.ts) ----
  /** Count one more reference to deputy directory `handle` (a holder hands it on). */
  dir_attach: { id: 112, payload: { handle: 'u32' }, reply: 'dir_attached' },
  dir_attached: { id: 113, payload: { handle: 'u32' } },
  /** Give `refs` references to deputy directory `handle` back (the last one closes it). */
  dir_detach: { id: 114, payload: { handle: 'u32', refs: 'u32' } },
  /**
   * A path call on deputy directory `handle`, run by the home in its namespace (`op`: open,
   * stat, mkdir, rmdir, unlink, rename and link — `path2` in deputy directory `to` —, symlink to
   * `path2`, readlink, times, or list).
   */
  dir_call: {
    id: 115,
    payload: { handle: 'u32', call: DIR_CALL },
    reply: 'dir_answer',
  },
  /** open: the new fd's record (a remote file or directory); stat: its attributes; list: the entries; readlink: the target. */
  dir_answer: { id: 116, payload: { fds: [FD_RECORD], stat: [FILESTAT], entries: [{ name: 'str', ino: 'u64', filetype: 'u8' }], target: 'bytes' } },

  // ---- information: what ps and `popcorn kernels` show (src/services/info.ts) ----
  /** Ask a kernel for its processes, load and message counters. */
  kernel_info: { id: 60, payload: {}, reply: 'kernel_info_reply' },
  kernel_info_reply: {
    id: 61,
    payload: {
      kernel: 'u32',
      /** Processes waiting for the CPU (the run queue), plus the one on it, if any. */
      load: 'u32',
      processes: [{
        pid: 'u32',
        /** The parent's PID (0: started by a node, 1: orphaned). */
        ppid: 'u32',
        /** runnable, running, blocked, stopped, or zombie (ended, not yet waited for). */
        state: 'str',
        cpu_ms: 'f64',
        memory_bytes: 'f64',
        name: 'str',
        args: ['str'],
      }],
      /**
       * Table sizes: live processes, origin records (live + zombie), pipes and proxies, host
       * stream channels, files of other nodes' processes kept here (deputies) plus descriptions of
       * files kept elsewhere, and the same for directories.
       */
      tables: { processes: 'u32', origins: 'u32', pipes: 'u32', streams: 'u32', files: 'u32', dirs: 'u32' },
      /** Processes that moved to and from this kernel since boot; µs from stop to running here of the last arrival. */
      migrations: { in: 'u32', out: 'u32', last_us: 'f64' },
      /** The kernel thread's V8 heap in use. */
      heap_bytes: 'f64',
      /** The kernel's messenger counters (MessengerStats). */
      messages: {
        sent: 'f64', received: 'f64', relayed: 'f64', fragmentsSent: 'f64', malformed: 'f64', unroutable: 'f64', lateReplies: 'f64', handlerErrors: 'f64',
      },
    },
  },
  /**
   * Observers (metrics, top, the dashboard): the kernel's counters, read only when asked, and
   * its events after `since` (the last seq the asker has).
   */
  kernel_stats: { id: 123, payload: { since: 'f64' }, reply: 'kernel_stats_reply' },
  kernel_stats_reply: {
    id: 124,
    payload: {
      kernel: 'u32',
      /** CPU time of every slice run here since boot, including the one on the CPU now. */
      cpu_ms: 'f64',
      /** Processes waiting for the CPU. */
      run_queue: 'u32',
      /** Messages and bytes per message type and per peer endpoint, since boot (src/msg/traffic.ts). */
      types: [{ type: 'str', sent: 'f64', sent_bytes: 'f64', received: 'f64', received_bytes: 'f64' }],
      peers: [{ peer: 'u32', sent: 'f64', sent_bytes: 'f64', received: 'f64', received_bytes: 'f64' }],
      /** src/kernel/events.ts: kind spawn, exit, signal or migrate. */
      events: [{ seq: 'f64', at: 'f64', kind: 'str', pid: 'u32', a: 'f64', b: 'f64' }],
    },
  },
  /**
   * `popcorn trace` (src/kernel/trace.ts): `on` starts recording afresh (at most `capacity`
   * records; `pid` 0: every process), off stops; either way the answer has what was recorded.
   */
  kernel_trace: { id: 128, payload: { on: 'bool', pid: 'u32', capacity: 'u32' }, reply: 'kernel_trace_reply' },
  kernel_trace_reply: {
    id: 129,
    payload: {
      kernel: 'u32',
      /** Whether a trace was recording when asked, and the records it dropped (oldest first). */
      recording: 'bool', dropped: 'f64',
      records: [{ kind: 'u8', ts: 'f64', dur: 'f64', pid: 'u32', name: 'str', a: 'f64', b: 'f64', c: 'f64', f: 'u8' }],
    },
  },
} as const satisfies MessageTable;

/** The kernels' and hosts' message table: what their Messengers are typed over. */
export type Protocol = typeof MESSAGES;
export type MessageName = NameOf<Protocol>;
export type Payload<N extends MessageName> = PayloadOf<Protocol, N>;

/** Message names that expect a reply, and the reply's name. */
export type RequestName = RequestOf<Protocol>;
export type ReplyName<N extends RequestName> = ReplyNameOf<Protocol, N>;
export type ReplyPayload<N extends RequestName> = ReplyPayloadOf<Protocol, N>;
