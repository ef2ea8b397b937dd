/**
 * In `npm test`: sqlite3 (../shared/programs/sqlite3, no network needed) on a 150,000-row
 * workload, under node:wasi, `popcorn run`, and moved between kernels while it runs — the same
 * bytes each time. The npm programs (flite, Yosys) are in `npm run programs` (test/programs/all.test.ts).
 */

import { SQLITE3 } from './catalog.js';
import { programSuite } from './suite.js';

programSuite(SQLITE3, { scenario: 'check', hops: 4, everyMs: 250 });
