// The embedded database in a thread of its own (EMBEDDED_DB_THREAD): PGlite served on a Unix socket, the service
// reaching it through `pg`. Data survives a close and reopen; transactions of two connections do not interleave;
// the socket is its owner's alone; and a long query leaves the event loop free (in-process, PGlite's WebAssembly
// holds it for the whole statement). LISTEN/NOTIFY works through the thread as in-process: a notification committed
// on any connection reaches the listening one (and none of a transaction rolled back).
import { mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { type Database, openDatabase, rowsOf } from '../src/db/client.js';
import { databaseSnapshot } from './db-snapshot.js';

/** How many times the event loop turned while `work` ran: 0 to a few when something held it the whole time. */
async function loopTurnsDuring(work: Promise<unknown>): Promise<number> {
  let turns = 0;
  let done = false;
  const spin = () => {
    if (done) return;
    turns += 1;
    setImmediate(spin);
  };
  setImmediate(spin);
  await work;
  done = true;
  return turns;
}

const LONG_QUERY = sql`select count(*) from generate_series(1, 2000000) g where g % 7 = 3`;

// Each opens a fresh database (initdb and every migration): seconds, more on a busy machine.
const SLOW = 180_000;

describe('embedded database thread', () => {
  it(
    'keeps data across close and reopen, and serves a schema with migrations applied',
    async () => {
      const dataDir = path.join(mkdtempSync(path.join(tmpdir(), 'va-dbthread-')), 'pglite');
      let db: Database = await openDatabase({ dataDir, poolMax: 4, thread: true });
      try {
        expect(db.kind).toBe('embedded');
        expect(db.poolStats?.().total).toBeGreaterThanOrEqual(1);
        await db.db.execute(sql`create table kept (v text)`);
        await db.db.execute(sql`insert into kept values ('still here')`);
        expect((statSync(path.join(dataDir, '.s.PGSQL.5432')).mode & 0o777).toString(8)).toBe('600');
      } finally {
        await db.close();
      }
      db = await openDatabase({ dataDir, poolMax: 4, thread: true });
      try {
        expect(rowsOf<{ v: string }>(await db.db.execute(sql`select v from kept`))).toEqual([{ v: 'still here' }]);
        // The migrations ran over the socket too.
        const tables = rowsOf<{ n: number }>(
          await db.db.execute(sql`select count(*)::int as n from information_schema.tables where table_name = 'tenants'`),
        );
        expect(tables[0]!.n).toBe(1);
      } finally {
        await db.close();
      }
    },
    SLOW,
  );

  it(
    "runs one connection's transaction at a time: the other's statements wait for its end",
    async () => {
      const db = await openDatabase({ dataDir: 'memory://', poolMax: 4, thread: true, snapshot: await databaseSnapshot() });
      try {
        await db.db.execute(sql`create table counter (n int)`);
        await db.db.execute(sql`insert into counter values (0)`);
        // Each transaction reads, then writes read + 1: interleaved, two would read the same value and one increment
        // would be lost.
        await Promise.all(
          Array.from({ length: 8 }, () =>
            db.db.transaction(async (tx) => {
              const [row] = rowsOf<{ n: number }>(await tx.execute(sql`select n from counter`));
              await new Promise((r) => setImmediate(r));
              await tx.execute(sql`update counter set n = ${row!.n + 1}`);
            }),
          ),
        );
        expect(rowsOf<{ n: number }>(await db.db.execute(sql`select n from counter`))).toEqual([{ n: 8 }]);
        // A failed transaction rolls back and frees the database for the others.
        await expect(
          db.db.transaction(async (tx) => {
            await tx.execute(sql`update counter set n = 100`);
            throw new Error('changed my mind');
          }),
        ).rejects.toThrow('changed my mind');
        expect(rowsOf<{ n: number }>(await db.db.execute(sql`select n from counter`))).toEqual([{ n: 8 }]);
      } finally {
        await db.close();
      }
    },
    SLOW,
  );

  it(
    'leaves the event loop free during a long query (in-process PGlite holds it)',
    async () => {
      const threaded = await openDatabase({ dataDir: 'memory://', poolMax: 2, thread: true, snapshot: await databaseSnapshot() });
      let inThread: number;
      try {
        inThread = await loopTurnsDuring(threaded.db.execute(LONG_QUERY));
      } finally {
        await threaded.close();
      }
      const inline = await openDatabase({ dataDir: 'memory://', poolMax: 2, snapshot: await databaseSnapshot() });
      let inProcess: number;
      try {
        inProcess = await loopTurnsDuring(inline.db.execute(LONG_QUERY));
      } finally {
        await inline.close();
      }
      // Counts, not times: the loop turned freely beside the thread, and hardly at all around in-process PGlite.
      expect(inProcess).toBeLessThan(20);
      expect(inThread).toBeGreaterThan(10 * Math.max(inProcess, 5));
    },
    SLOW,
  );

  it.each([
    ['in the thread', true],
    ['in process', false],
  ])(
    'LISTEN/NOTIFY %s: notified at commit, from any connection; nothing for a rollback',
    async (_name, thread) => {
      const db = await openDatabase({ dataDir: 'memory://', poolMax: 4, thread, snapshot: await databaseSnapshot() });
      try {
        const heard: string[] = [];
        const stop = await db.listen('test_channel', () => heard.push('notified'));
        await db.db.transaction(async (tx) => {
          await tx.execute(sql`select pg_notify('test_channel', '')`);
          // Not before the commit.
          await tx.execute(sql`select 1`);
          expect(heard).toEqual([]);
        });
        await expect(
          db.db.transaction(async (tx) => {
            await tx.execute(sql`select pg_notify('test_channel', '')`);
            throw new Error('rolled back');
          }),
        ).rejects.toThrow('rolled back');
        // Another channel is not this listener's business.
        await db.db.execute(sql`select pg_notify('other_channel', '')`);
        await db.db.execute(sql`select pg_notify('test_channel', '')`);
        const deadline = Date.now() + 10_000;
        while (heard.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        expect(heard).toEqual(['notified', 'notified']);
        await stop();
        await db.db.execute(sql`select pg_notify('test_channel', '')`);
        await db.db.execute(sql`select 1`);
        expect(heard).toHaveLength(2);
      } finally {
        await db.close();
      }
    },
    SLOW,
  );
});
