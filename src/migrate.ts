// `npm run migrate`: applies the pending database migrations and exits, for operators who run them as a release
// step (then MIGRATE_ON_START=false keeps instances from applying them). Same configuration as the service.
import { ConfigError, loadConfig } from './config.js';
import { openDatabase, pendingMigrations } from './db/client.js';

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG, as main.ts
  }
  throw err;
}
// The embedded database is one process's: stop the service using this DATA_DIR first. PostgreSQL's advisory lock
// makes instances starting meanwhile wait for these migrations instead of applying them too.
const where = config.databaseUrl ? 'PostgreSQL (DATABASE_URL)' : `the embedded database in ${config.dataDir}/pglite`;
try {
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir === 'memory://' ? 'memory://' : `${config.dataDir}/pglite`,
    poolMax: 1,
    migrate: true,
  });
  const left = await pendingMigrations(database.db);
  await database.close();
  if (left.length) throw new Error(`${left.length} migration(s) still pending after migrating: ${left.join(', ')}`);
  console.log(`migrate: ${where} is current`);
} catch (err) {
  console.error(`migrate: ${where}: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
}
