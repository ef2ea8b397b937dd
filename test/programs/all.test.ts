/**
 * `npm run programs`: every program of test/programs/catalog.ts — sqlite3, flite, Yosys — under
 * node:wasi, `popcorn run`, and moved between kernels while it runs; plus sqlite3 on
 * ../shared/programs/sqlite3/work.sql itself, checked against the md5s in its README. The first
 * run on a fresh cache fetches the npm packages and instruments 20–30 MB modules (minutes).
 *
 * `npm test` loads this file too (it runs every file under test/); there, with POPCORN_PROGRAMS
 * unset, it defines no tests.
 */

import { FLITE, SQLITE3, YOSYS } from './catalog.js';
import { programSuite } from './suite.js';

if (process.env['POPCORN_PROGRAMS'] !== undefined) {
  programSuite(SQLITE3, { scenario: 'bench', hops: 6, everyMs: 400 });
  programSuite(FLITE, { scenario: 'check', hops: 4, everyMs: 300 });
  programSuite(YOSYS, { scenario: 'check', hops: 6, everyMs: 1000 });
}
