// A Postgres server for benchmarks: PGlite (with pgvector) served over the Postgres wire protocol in its own
// process, as a real database server would run beside the service. Prints its URL on the first line of stdout.
//   npx tsx bench/pg-server.ts
import { PGlite } from '@electric-sql/pglite';
import { PGLiteSocketServer } from '@electric-sql/pglite-socket';
import { PGLITE_EXTENSIONS } from '../src/db/client.js';

const pglite = await PGlite.create({ dataDir: 'memory://', extensions: PGLITE_EXTENSIONS });
const server = new PGLiteSocketServer({ db: pglite, port: 0, host: '127.0.0.1' });
await server.start();
console.log(`postgres://postgres:postgres@${server.getServerConn()}/postgres`);
// Ends with its parent: stdin closes when the benchmark exits.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
