// The migrated test database, built once and copied per test app: initdb plus every migration costs seconds, a copy
// of the result a fraction of that. Kept as a file in the temp folder, named by a hash of the migrations and the
// PGlite version, so vitest's global setup builds it once for every worker (and the next run reuses it), and a
// changed migration gets a new file.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { migratedPgliteSnapshot, PGLITE_EXTENSIONS } from '../src/db/client.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const migrationsFolder = path.join(root, 'src/db/migrations');

function snapshotPath(): string {
  const hash = createHash('sha256');
  for (const pkg of ['pglite', 'pglite-pgvector'])
    hash.update(readFileSync(path.join(root, 'node_modules/@electric-sql', pkg, 'package.json')));
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]))
      .sort();
  for (const file of files(migrationsFolder)) hash.update(path.relative(migrationsFolder, file)).update(readFileSync(file));
  hash.update(TEST_SETTINGS);
  return path.join(tmpdir(), `voice-agent-test-db-${hash.digest('hex').slice(0, 16)}.tar`);
}

// initdb's 128 MB of shared buffers are set up (in WebAssembly) at every start: with 16 MB, a test database starts in
// 1.5 s instead of 2.5 s (medians of 5, load 8). Tests hold kilobytes to a few megabytes; the service's own databases
// keep initdb's settings.
const TEST_SETTINGS = "ALTER SYSTEM SET shared_buffers = '16MB'";

async function withTestSettings(snapshot: Blob): Promise<Blob> {
  const client = await PGlite.create({ loadDataDir: snapshot, extensions: PGLITE_EXTENSIONS });
  try {
    await client.exec(TEST_SETTINGS);
    return await client.dumpDataDir('none');
  } finally {
    await client.close();
  }
}

/** Builds the snapshot file unless it exists; returns its path. */
export async function ensureDatabaseSnapshot(): Promise<string> {
  const file = snapshotPath();
  if (!existsSync(file)) {
    const blob = await withTestSettings(await migratedPgliteSnapshot());
    // Written aside, then renamed: a concurrent reader never sees half a file.
    const partial = `${file}.${process.pid}.partial`;
    writeFileSync(partial, Buffer.from(await blob.arrayBuffer()));
    renameSync(partial, file);
  }
  return file;
}

let snapshot: Promise<Blob> | undefined;
/**
 * The snapshot, read once per worker (its module cache is kept from file to file). PGlite and the database thread
 * read it with arrayBuffer(), which Node serves from a Blob in 64 KB pieces: a quarter of a test app's start-up for
 * these 42 MB. This one answers with a copy of the file's bytes instead (a copy: the reader may take it over).
 */
export function databaseSnapshot(): Promise<Blob> {
  snapshot ??= ensureDatabaseSnapshot().then((file) => {
    const bytes = readFileSync(file);
    const blob = new Blob([bytes]);
    blob.arrayBuffer = async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    return blob;
  });
  return snapshot;
}

/**
 * Makes `dataDir` (a service's DATA_DIR, new) hold the migrated database where the service keeps it, `<DATA_DIR>/pglite`:
 * the snapshot is a tarball of a PGlite data folder. A process started on it skips initdb and the migrations, which
 * took 10 to 40 s on a loaded 2-core machine. For tests about anything but a first start (main.test.ts and
 * migrate.test.ts start empty folders on purpose).
 */
export async function seedDataDir(dataDir: string): Promise<string> {
  const pglite = path.join(dataDir, 'pglite');
  mkdirSync(pglite, { recursive: true });
  // The entries are named from the root (/base/..., /pg_wal/...): GNU tar strips the leading slash, and says so.
  execFileSync('tar', ['-xf', await ensureDatabaseSnapshot(), '-C', pglite], { stdio: 'ignore' });
  return dataDir;
}
