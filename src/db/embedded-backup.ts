// Backups of the embedded database (PGlite, the default without DATABASE_URL): the data folder dumped as one
// tarball (PGlite's dumpDataDir) and loaded back (loadDataDir). Only while no process has the folder open (the
// service holds its lock: db/data-dir-lock.ts): a dump of a folder being written would be inconsistent.
import { existsSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from './client.js';
import { lockDataDir } from './data-dir-lock.js';

/** Writes the database in `dataDir` to `file` (gzipped tar); returns its size in bytes. Throws DataDirBusyError. */
export async function backupEmbedded(dataDir: string, file: string): Promise<number> {
  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) throw new Error(`no embedded database in ${dataDir}`);
  const release = lockDataDir(dataDir, 'db:backup');
  try {
    const db = await PGlite.create({ dataDir, extensions: PGLITE_EXTENSIONS });
    try {
      const dump = await db.dumpDataDir('gzip');
      // Written aside, then renamed: an interrupted backup never leaves a half file under the name asked for.
      const partial = `${file}.partial`;
      writeFileSync(partial, Buffer.from(await dump.arrayBuffer()), { mode: 0o600 });
      renameSync(partial, file);
    } finally {
      await db.close();
    }
  } finally {
    release();
  }
  return statSync(file).size;
}

/**
 * Replaces the database in `dataDir` with the backup in `file`. The backup is loaded into a folder beside it and
 * checked first; only then is the current folder moved aside (returned: `<dataDir>.before-restore-<time>`, kept
 * until the operator removes it) and the restored one put in its place. Throws DataDirBusyError.
 */
export async function restoreEmbedded(dataDir: string, file: string): Promise<{ previous: string | undefined }> {
  const release = lockDataDir(dataDir, 'db:restore');
  const staging = `${dataDir}.restoring`;
  try {
    rmSync(staging, { recursive: true, force: true });
    const db = await PGlite.create({ dataDir: staging, extensions: PGLITE_EXTENSIONS, loadDataDir: new Blob([readFileSync(file)]) });
    try {
      // A tarball that is not a database of ours fails here, before anything is replaced.
      await db.query('select count(*) from drizzle.__drizzle_migrations').catch(() => {
        throw new Error(`${file} is not a backup of this service's database (it has no migrations table)`);
      });
    } finally {
      await db.close();
    }
    let previous: string | undefined;
    if (existsSync(dataDir)) {
      previous = `${dataDir}.before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      renameSync(dataDir, previous);
    }
    renameSync(staging, dataDir);
    return { previous };
  } catch (err) {
    rmSync(staging, { recursive: true, force: true });
    throw err;
  } finally {
    release();
  }
}
