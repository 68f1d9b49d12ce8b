import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { Server } from 'node:net';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { replyOf, servePglite } from './pglite-server.js';
import { CUSTOM_PLAN } from './statement-cache.js';

describe('servePglite: LISTEN/UNLISTEN over one shared PGlite session', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pglite-server-'));
  const socketPath = join(dir, '.s.PGSQL.5432');
  let pglite: PGlite;
  let server: Server;
  const clients: pg.Client[] = [];
  const connect = async () => {
    const client = new pg.Client({ host: dir, port: 5432, user: 'postgres', database: 'postgres' });
    await client.connect();
    clients.push(client);
    return client;
  };

  beforeAll(async () => {
    pglite = await PGlite.create('memory://');
    server = servePglite(pglite);
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => {})));
    await new Promise((resolve) => server.close(resolve));
    await pglite.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("one connection's UNLISTEN does not stop the channel for another connection still listening", async () => {
    const [a, b, writer] = [await connect(), await connect(), await connect()];
    const heard: string[] = [];
    a.on('notification', (m) => heard.push(`a:${m.channel}:${m.payload}`));
    b.on('notification', (m) => heard.push(`b:${m.channel}:${m.payload}`));
    await a.query('listen jobs');
    await b.query('listen jobs');
    await writer.query(`select pg_notify('jobs', 'one')`);
    await a.query('unlisten jobs');
    // A's connection still answers queries after its UNLISTEN, inside and outside a transaction.
    expect((await a.query('select 1 as one')).rows).toEqual([{ one: 1 }]);
    await a.query('begin');
    await a.query('unlisten *');
    await a.query('commit');
    await writer.query(`select pg_notify('jobs', 'two')`);
    await writer.query('select 1');
    await b.query('select 1');
    expect(heard.sort()).toEqual(['a:jobs:one', 'b:jobs:one', 'b:jobs:two']);
  });
});

describe('servePglite: query texts parsed once for every connection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pglite-server-'));
  const socketPath = join(dir, '.s.PGSQL.5432');
  let pglite: PGlite;
  let server: Server;
  const pools: pg.Pool[] = [];
  const pool = () => {
    const p = new pg.Pool({ host: dir, port: 5432, user: 'postgres', database: 'postgres', max: 3 });
    pools.push(p);
    return p;
  };
  /** The statements PGlite's session holds for this text. */
  const preparedFor = async (text: string) =>
    (await pglite.query<{ n: number }>('select count(*)::int as n from pg_prepared_statements where statement = $1', [text])).rows[0]!.n;

  beforeAll(async () => {
    pglite = await PGlite.create('memory://');
    await pglite.exec('create table t (id int primary key, v text); insert into t values (1, $$one$$), (2, $$two$$)');
    server = servePglite(pglite, { statementCacheSize: 3 });
    await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  });
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end().catch(() => {})));
    await new Promise((resolve) => server.close(resolve));
    await pglite.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('many connections running the same query get their own rows, from one prepared statement', async () => {
    const p = pool();
    const text = 'select v from t where id = $1';
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => p.query(text, [(i % 2) + 1])));
    expect(answers.map((a) => a.rows[0].v)).toEqual(Array.from({ length: 12 }, (_, i) => (i % 2 ? 'two' : 'one')));
    expect(await preparedFor(text)).toBe(1);
  });

  it('errors, transactions and a changed table behave as without the cache', async () => {
    const p = pool();
    await expect(p.query('selec v from t where id = $1', [1])).rejects.toThrow(/syntax error/);
    await expect(p.query('select v from t where id = $1', ['x'])).rejects.toThrow(/invalid input syntax/);
    const client = await p.connect();
    try {
      await client.query('begin');
      await client.query('insert into t values ($1, $2)', [3, 'three']);
      await client.query('insert into t values ($1, $2)', [4, 'four']);
      await client.query('rollback');
    } finally {
      client.release();
    }
    expect((await p.query('select count(*)::int as n from t where id > $1', [0])).rows).toEqual([{ n: 2 }]);
    // `select *` cached, then the table gains a column: the next run sees it (the stale statement is parsed again).
    const all = 'select * from t where id = $1';
    expect((await p.query(all, [1])).rows).toEqual([{ id: 1, v: 'one' }]);
    await p.query('alter table t add column w int');
    expect((await p.query(all, [1])).rows).toEqual([{ id: 1, v: 'one', w: null }]);
    // Statements dropped behind the cache's back are parsed again too.
    await p.query('deallocate all');
    expect((await p.query(all, [2])).rows).toEqual([{ id: 2, v: 'two', w: null }]);
  });

  it('plans a cached text once, as PostgreSQL plans prepared statements, except texts marked CUSTOM_PLAN', async () => {
    const p = pool();
    const plans = async (text: string) =>
      (
        await pglite.query<{ generic: number; custom: number }>(
          'select generic_plans::int as generic, custom_plans::int as custom from pg_prepared_statements where statement = $1',
          [text],
        )
      ).rows[0];
    const plain = 'select v, 100 as plain from t where id = $1';
    const marked = `${CUSTOM_PLAN} select v, 101 as marked from t where id = $1`;
    for (let i = 0; i < 8; i++) {
      expect((await p.query(plain, [1])).rows).toEqual([{ v: 'one', plain: 100 }]);
      expect((await p.query(marked, [2])).rows).toEqual([{ v: 'two', marked: 101 }]);
    }
    // PostgreSQL's auto mode: five custom plans, then the generic one.
    expect(await plans(plain)).toEqual({ generic: 3, custom: 5 });
    expect(await plans(marked)).toEqual({ generic: 0, custom: 8 });
    // Inside a transaction a marked text goes as sent (no switch a rollback could undo): still planned for its values.
    const client = await p.connect();
    try {
      await client.query('begin');
      expect((await client.query(marked, [1])).rows).toEqual([{ v: 'one', marked: 101 }]);
      await client.query('rollback');
    } finally {
      client.release();
    }
    expect(await plans(marked)).toEqual({ generic: 0, custom: 8 });
    await p.query(plain, [1]);
    expect(await plans(plain)).toEqual({ generic: 4, custom: 5 });
  });

  it('keeps at most its size of texts: the least recently used are closed', async () => {
    const p = pool();
    for (let i = 0; i < 8; i++) await p.query(`select v, ${i} as i from t where id = $1`, [1]);
    // The statement evicted last is closed before the next round trip.
    await p.query('select v, 7 as i from t where id = $1', [1]);
    const held = await pglite.query<{ n: number }>('select count(*)::int as n from pg_prepared_statements');
    expect(held.rows[0]!.n).toBeLessThanOrEqual(3);
  });
});

describe('replyOf: a round trip through PGlite as bytes, nothing else', () => {
  let pglite: PGlite;
  beforeAll(async () => {
    pglite = await PGlite.create('memory://');
    await pglite.exec(`create table t (id int, s text); insert into t select g, repeat('x', 200) from generate_series(1, 2000) g`);
  });
  afterAll(async () => {
    await pglite.close();
  });

  /** One extended-protocol round trip as `pg` sends it (Parse, Bind, Describe, Execute, Sync; unnamed, no parameters). */
  const roundTrip = (text: string) => {
    const message = (type: string, body: Buffer) => {
      const head = Buffer.alloc(5);
      head.write(type, 0, 'latin1');
      head.writeInt32BE(4 + body.length, 1);
      return Buffer.concat([head, body]);
    };
    const z = Buffer.from([0]);
    return Buffer.concat([
      message('P', Buffer.concat([z, Buffer.from(text), z, Buffer.alloc(2)])),
      message('B', Buffer.concat([z, z, Buffer.alloc(6)])),
      message('D', Buffer.concat([Buffer.from('P'), z])),
      message('E', Buffer.concat([z, Buffer.alloc(4)])),
      message('S', Buffer.alloc(0)),
    ]);
  };

  it('gives the bytes execProtocolRaw gives: a reply PGlite writes in several pieces, and an error', async () => {
    for (const text of ['select * from t', 'select * from nowhere', 'select 1']) {
      const expected = await pglite.execProtocolRaw(roundTrip(text));
      const reply = await replyOf(pglite, roundTrip(text));
      expect(Buffer.from(reply).equals(Buffer.from(expected))).toBe(true);
      // PGlite keeps replyOf's callback for its output until its own next exec or query (see replyOf).
      await pglite.exec('select 1');
    }
    // The whole table came back (2,000 data rows of over 200 bytes: more than one piece of PGlite's output).
    const all = Buffer.from(await replyOf(pglite, roundTrip('select * from t')));
    expect(all.length).toBeGreaterThan(400_000);
  });

  it('keeps nothing of the replies (execProtocolRaw keeps every message it parsed until the next exec)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const heapGrowth = async (run: (m: Buffer) => Promise<unknown>) => {
      const message = roundTrip('select * from t where id <= 20');
      await pglite.exec('select 1');
      gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < 2000; i++) await run(message);
      gc();
      return process.memoryUsage().heapUsed - before;
    };
    // The control: PGlite's own raw call holds on to ~20 parsed rows a round trip (about 9 MB here).
    expect(await heapGrowth((m) => pglite.execProtocolRaw(m))).toBeGreaterThan(4_000_000);
    expect(await heapGrowth((m) => replyOf(pglite, m))).toBeLessThan(1_000_000);
  });
});
