// A Postgres server for benchmarks: PGlite (with pgvector) served over the Postgres wire protocol in its own
// process, as a real database server would run beside the service. Prints its URL on the first line of stdout.
//   npx tsx bench/pg-server.ts [--load <data-dir dump>]   (--load: start from a PGlite dumpDataDir tarball, e.g. the
//                                                        migrated test snapshot, instead of an empty database)
//   npx tsx bench/pg-server.ts --data-dir <dir>          (serve a PGlite data folder, e.g. one bench:rag filled)
// The server itself is the embedded database thread's (src/db/pglite-server.ts: many connections taking turns
// a round trip at a time), here on loopback TCP in a process of its own.
import { readFileSync } from 'node:fs';
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from '../src/db/pglite-extensions.js';
import { servePglite } from '../src/db/pglite-server.js';

const loadAt = process.argv.indexOf('--load');
const load = loadAt > 0 ? new Blob([readFileSync(process.argv[loadAt + 1]!)]) : undefined;
const dirAt = process.argv.indexOf('--data-dir');
const dataDir = dirAt > 0 ? process.argv[dirAt + 1]! : 'memory://';
const pglite = await PGlite.create({ dataDir, extensions: PGLITE_EXTENSIONS, ...(load && { loadDataDir: load }) });
const server = servePglite(pglite);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const address = server.address();
if (!address || typeof address === 'string') throw new Error('no TCP address');
console.log(`postgres://postgres:postgres@127.0.0.1:${address.port}/postgres`);
// Ends with its parent: stdin closes when the benchmark exits.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
