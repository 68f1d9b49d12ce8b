import { openDatabase, PGLITE_EXTENSIONS } from './src/db/client.js';
import { PGlite } from '@electric-sql/pglite';
let t = performance.now();
const d = await openDatabase({ dataDir: 'memory://', poolMax: 1 });
console.log('fresh+migrate', performance.now() - t);
t = performance.now();
const c = await PGlite.create({ dataDir: 'memory://', extensions: PGLITE_EXTENSIONS });
console.log('fresh initdb only', performance.now() - t);
t = performance.now();
// @ts-ignore
const client = (d.db as any).$client as PGlite;
const blob = await client.dumpDataDir('none');
console.log('dump', performance.now() - t, blob.size);
for (let i = 0; i < 3; i++) {
t = performance.now();
const e = await PGlite.create({ loadDataDir: blob, extensions: PGLITE_EXTENSIONS });
console.log('from blob', performance.now() - t);
t = performance.now();
const r = await e.query('select count(*) from drizzle.__drizzle_migrations');
console.log('q', performance.now() - t, r.rows);
}
