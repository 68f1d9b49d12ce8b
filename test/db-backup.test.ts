// Backups of the embedded database (npm run db:backup / db:restore): back up, change the data, restore, and the old
// data is back; both refuse while another live process (the service) has the database open.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, it } from 'vitest';
import { openDatabase, rowsOf } from '../src/db/client.js';
import { DataDirBusyError } from '../src/db/data-dir-lock.js';
import { backupEmbedded, restoreEmbedded } from '../src/db/embedded-backup.js';
import { databaseSnapshot } from './db-snapshot.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'db-backup-'));
const dataDir = path.join(root, 'pglite');
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function withDatabase<T>(use: (db: Awaited<ReturnType<typeof openDatabase>>['db']) => Promise<T>): Promise<T> {
  const database = await openDatabase({ dataDir, poolMax: 1, snapshot: existsSync(dataDir) ? undefined : await databaseSnapshot() });
  try {
    return await use(database.db);
  } finally {
    await database.close();
  }
}
const tenantNames = (db: Parameters<Parameters<typeof withDatabase>[0]>[0]) =>
  db.execute(sql`select name from tenants order by name`).then((r) => rowsOf<{ name: string }>(r).map((t) => t.name));

describe('embedded database backups', () => {
  it('backs up, and a restore brings the old data back', async () => {
    await withDatabase((db) => db.execute(sql`insert into tenants (name) values ('Before the backup')`));
    const file = path.join(root, 'backup.tar.gz');
    expect(await backupEmbedded(dataDir, file)).toBeGreaterThan(1000);

    await withDatabase(async (db) => {
      await db.execute(sql`update tenants set name = 'Changed after' where name = 'Before the backup'`);
      await db.execute(sql`insert into tenants (name) values ('Added after')`);
    });
    expect(await withDatabase(tenantNames)).toEqual(['Added after', 'Changed after']);

    const { previous } = await restoreEmbedded(dataDir, file);
    expect(await withDatabase(tenantNames)).toEqual(['Before the backup']);
    // The database it replaced is kept aside, whole.
    expect(previous && existsSync(path.join(previous, 'PG_VERSION'))).toBe(true);
  }, 120_000);

  it('refuses while another process has the database open, and takes over a dead one’s lock', async () => {
    // The lock the service takes when it opens the folder, held by a live process (this test's parent).
    writeFileSync(`${dataDir}.lock`, JSON.stringify({ pid: process.ppid, by: 'the service', since: new Date().toISOString() }));
    const file = path.join(root, 'refused.tar.gz');
    await expect(backupEmbedded(dataDir, file)).rejects.toThrow(DataDirBusyError);
    await expect(backupEmbedded(dataDir, file)).rejects.toThrow(/open in the service \(pid \d+.*stop it first/);
    await expect(restoreEmbedded(dataDir, path.join(root, 'backup.tar.gz'))).rejects.toThrow(DataDirBusyError);
    await expect(openDatabase({ dataDir, poolMax: 1 })).rejects.toThrow(DataDirBusyError);
    expect(existsSync(file)).toBe(false);
    // A process that died (a crash, SIGKILL) left its lock behind: stale, taken over.
    writeFileSync(`${dataDir}.lock`, JSON.stringify({ pid: 2 ** 22 + 12345, by: 'the service', since: new Date().toISOString() }));
    expect(await backupEmbedded(dataDir, file)).toBeGreaterThan(1000);
    expect(existsSync(`${dataDir}.lock`)).toBe(false);
  }, 120_000);
});
