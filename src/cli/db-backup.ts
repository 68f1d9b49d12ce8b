// `npm run db:backup [file]`: the embedded database (DATA_DIR/pglite) to a gzipped tarball (default
// DATA_DIR/backups/pglite-<time>.tar.gz). `npm run db:restore <file>`: replaces it with one (the current folder is
// kept beside it). Both refuse while the service has the database open. With DATABASE_URL, use pg_dump/pg_restore.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, loadConfig } from '../config.js';
import { DataDirBusyError } from '../db/data-dir-lock.js';
import { backupEmbedded, restoreEmbedded } from '../db/embedded-backup.js';

const [command, file] = process.argv.slice(2);
let config;
try {
  config = loadConfig();
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(78);
}
if (config.databaseUrl) {
  console.error('db:backup and db:restore are for the embedded database; with DATABASE_URL use pg_dump and pg_restore');
  process.exit(64);
}
if (config.dataDir === 'memory://') {
  console.error('DATA_DIR=memory:// keeps nothing to back up');
  process.exit(64);
}
const dataDir = path.join(config.dataDir, 'pglite');
try {
  if (command === 'backup') {
    const target = path.resolve(
      file ?? path.join(config.dataDir, 'backups', `pglite-${new Date().toISOString().replace(/[:.]/g, '-')}.tar.gz`),
    );
    mkdirSync(path.dirname(target), { recursive: true });
    const bytes = await backupEmbedded(dataDir, target);
    console.log(`backed up ${dataDir} to ${target} (${bytes} bytes)`);
  } else if (command === 'restore' && file) {
    const { previous } = await restoreEmbedded(dataDir, path.resolve(file));
    console.log(`restored ${dataDir} from ${file}${previous ? `; the database it replaced is kept in ${previous}` : ''}`);
  } else {
    console.error('usage: npm run db:backup [file] | npm run db:restore <file>');
    process.exit(64);
  }
} catch (err) {
  if (!(err instanceof DataDirBusyError)) throw err;
  console.error(`${command === 'restore' ? 'db:restore' : 'db:backup'} refused: ${err.message}`);
  process.exit(75); // EX_TEMPFAIL: try again once the service is stopped
}
