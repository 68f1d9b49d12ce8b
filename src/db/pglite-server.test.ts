import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { PGlite } from '@electric-sql/pglite';
import type { Server } from 'node:net';
import { servePglite } from './pglite-server.js';

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
