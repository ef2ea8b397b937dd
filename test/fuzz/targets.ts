/** Every fuzz target by name, for the short runs in `npm test` and the long ones of `npm run fuzz`. */
import type { FuzzBudget, FuzzReport } from './harness.js';
import { fuzzCheckpoint } from './checkpoint-target.js';
import { fuzzCluster } from './cluster-target.js';
import { fuzzControl } from './control-target.js';
import { fuzzFrames } from './frames-target.js';
import { fuzzSyscalls } from './syscalls-target.js';
import { fuzzWasm } from './wasm-target.js';

export const TARGETS: Record<string, (budget: FuzzBudget) => Promise<FuzzReport>> = {
  wasm: fuzzWasm,
  frames: fuzzFrames,
  checkpoint: fuzzCheckpoint,
  syscalls: fuzzSyscalls,
  control: fuzzControl,
  cluster: fuzzCluster,
};
