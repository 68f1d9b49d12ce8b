// Database connection: embedded PGlite (with pgvector) in the data folder by default, PostgreSQL through `pg`
// when DATABASE_URL is set. Both give the same Drizzle API; migrations are applied here at start-up (or, with
// MIGRATE_ON_START=false, only checked: `npm run migrate` applies them as a release step).
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PGlite } from '@electric-sql/pglite';
import { getTableColumns, sql, type Table } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import { socketErrorCode, StartupError } from '../lib/startup-error.js';
import { PGLITE_EXTENSIONS } from './pglite-extensions.js';
import { lockDataDir } from './data-dir-lock.js';
import * as schema from './schema.js';

export { PGLITE_EXTENSIONS };

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  /** 'embedded' (PGlite, in-process or in its own thread) or 'postgres' (a server over the wire). */
  kind: 'embedded' | 'postgres';
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The `pg` pool's connections now (operator metrics); absent for PGlite, which has no pool. */
  poolStats?(): { total: number; idle: number; waiting: number };
  /**
   * Calls `onNotify` for each NOTIFY on `channel` (sent at commit by any connection of any instance) until the
   * returned function is called. Over the wire a connection of its own listens; when it is lost it is made again
   * (every second until it is back) and `onNotify` is called once then, for what may have been sent meanwhile.
   */
  listen(channel: string, onNotify: () => void): Promise<() => Promise<void>>;
  /**
   * How another thread of this process reaches the same database (`connectDatabase`): the server's URL, or the
   * embedded database thread's socket. Absent for PGlite on the event loop, which only this thread can reach.
   */
  connection?: DatabaseConnection;
}

/** A `pg` connection (plain data: it is handed to worker threads). */
export type DatabaseConnection = Pick<pg.PoolConfig, 'connectionString' | 'host' | 'port' | 'user' | 'database'>;

/**
 * pgvector's search beam: the most rows one HNSW scan returns, so the most candidates a search may ask for (top_k
 * 50 x 4, rag/retriever.ts). Wider than pgvector's default 40 also because with a tenant filter most visited nodes
 * are other tenants' (bench:rag measures recall at 40 and 100).
 */
export const HNSW_EF_SEARCH = 200;

/**
 * Settings every connection gets (retrieval depends on them, rag/retriever.ts): pgvector's iterative index scans,
 * so a tenant filter applied after the HNSW scan still finds enough of the tenant's rows, and a search beam as
 * wide as the most candidates a search asks for. Per connection rather than `set local` in a transaction, so a
 * search is one round trip.
 */
export const SESSION_SETTINGS = `set hnsw.iterative_scan = relaxed_order; set hnsw.ef_search = ${HNSW_EF_SEARCH}`;

const migrationsFolder = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
/** Any fixed number: instances starting together take turns applying migrations. */
const MIGRATION_LOCK_ID = 7_401_226_001;

export interface OpenDatabaseOptions {
  /** postgres:// URL; without one, PGlite runs in-process. */
  url?: string;
  /** PGlite data directory, or `memory://` for a throw-away database (tests). */
  dataDir: string;
  poolMax: number;
  /**
   * Tests only: a migrated database (`migratedPgliteSnapshot`) for PGlite to start from, instead of initdb and every
   * migration (seconds per test app). The migrations still run, and find nothing left to apply.
   */
  snapshot?: Blob;
  /**
   * Apply pending migrations (the default). false: apply none and refuse to open (`SchemaNotCurrentError`) unless
   * every migration is already applied, for operators who run `npm run migrate` as a release step.
   */
  migrate?: boolean;
  /**
   * PGlite in a thread of its own, reached through `pg` over a Unix socket (EMBEDDED_DB_THREAD): its queries then
   * run beside the event loop instead of on it.
   */
  thread?: boolean;
  /** Who opens an embedded folder, named in the refusal another process gets meanwhile (db/data-dir-lock.ts). */
  holder?: string;
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const migrate = opts.migrate ?? true;
  const database = opts.url
    ? await openPostgres({ connectionString: opts.url }, opts.poolMax, migrate, 'postgres')
    : opts.thread
      ? await openPgliteThread(opts.dataDir, opts.poolMax, migrate, opts.snapshot, opts.holder ?? 'the service')
      : await openPglite(opts.dataDir, migrate, opts.snapshot, opts.holder ?? 'the service');
  if (!migrate) {
    const pending = await pendingMigrations(database.db).catch(async (err) => {
      await database.close();
      throw err;
    });
    if (pending.length) {
      await database.close();
      throw new SchemaNotCurrentError(pending);
    }
  }
  return database;
}

/** The database lacks migrations this code needs, and we were told not to apply them (MIGRATE_ON_START=false). */
export class SchemaNotCurrentError extends Error {
  constructor(readonly pending: string[]) {
    super(
      `The database schema is not current: ${pending.length} migration(s) pending (${pending[0]}${pending.length > 1 ? ` .. ${pending.at(-1)}` : ''}); ` +
        'run `npm run migrate`, or start with MIGRATE_ON_START unset to apply them at start-up.',
    );
  }
}

/**
 * The committed migrations the database has not applied yet, by tag, in order. Drizzle's migrator records each
 * applied migration's journal time in drizzle.__drizzle_migrations and applies every later one, so this is the
 * same rule: the journal's entries newer than the last recorded.
 */
export async function pendingMigrations(db: Db): Promise<string[]> {
  const journal = JSON.parse(readFileSync(path.join(migrationsFolder, 'meta', '_journal.json'), 'utf8')) as {
    entries: { when: number; tag: string }[];
  };
  const [table] = rowsOf<{ t: string | null }>(await db.execute(sql`select to_regclass('drizzle.__drizzle_migrations')::text as t`));
  let last = -1;
  if (table?.t) {
    const [row] = rowsOf<{ at: string | number | null }>(
      await db.execute(sql`select max(created_at) as at from drizzle.__drizzle_migrations`),
    );
    last = row?.at == null ? -1 : Number(row.at);
  }
  return journal.entries.filter((e) => e.when > last).map((e) => e.tag);
}

const BYTEA = 17;
// PGlite's own bytea codecs go byte by byte in JavaScript: a 19 MB document took 5 s to store and 2 s to read,
// all of it blocking the event loop (every request and live call). Node's hex codec does the same in milliseconds.
const byteaToHex = (v: Uint8Array) => `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
const byteaFromHex = (v: string) => new Uint8Array(Buffer.from(v.slice(2), 'hex'));

async function startPglite(dataDir: string, loadDataDir?: Blob, migrate = true) {
  // A fresh deployment given its SECRET_KEY has nothing else that creates the data folder.
  if (!dataDir.startsWith('memory://')) mkdirSync(dataDir, { recursive: true });
  const client = await PGlite.create({
    dataDir,
    extensions: PGLITE_EXTENSIONS,
    serializers: { [BYTEA]: byteaToHex },
    parsers: { [BYTEA]: byteaFromHex },
    ...(loadDataDir && { loadDataDir }),
  });
  const db = drizzlePglite({ client, schema });
  // PGlite is a single connection in this process, so no lock is needed around migrations.
  if (migrate) await migratePglite(db, { migrationsFolder });
  return { client, db };
}

/**
 * Tests: an in-memory database with every migration applied, as a tarball PGlite can start from (`snapshot`), so
 * a test app costs a copy rather than initdb and the migrations.
 */
export async function migratedPgliteSnapshot(): Promise<Blob> {
  const { client } = await startPglite('memory://');
  try {
    return await client.dumpDataDir('none');
  } finally {
    await client.close();
  }
}

/** A folder is one process's at a time: a backup, restore or second service meanwhile is refused. */
function lockFolder(dataDir: string, holder: string): () => void {
  if (dataDir.startsWith('memory://')) return () => {};
  mkdirSync(path.dirname(dataDir), { recursive: true });
  return lockDataDir(dataDir, holder);
}

async function openPglite(dataDir: string, migrate: boolean, snapshot: Blob | undefined, holder: string): Promise<Database> {
  const release = lockFolder(dataDir, holder);
  let started;
  try {
    started = await startPglite(dataDir, snapshot, migrate);
  } catch (err) {
    release();
    throw err;
  }
  const { client, db } = started;
  await client.exec(SESSION_SETTINGS);
  return {
    db: db as unknown as Db,
    kind: 'embedded',
    ping: async () => {
      await client.query('select 1');
    },
    // PGlite delivers its notifications to listeners in this process (at commit, as PostgreSQL does).
    listen: async (channel, onNotify) => {
      const unlisten = await client.listen(channel, () => onNotify());
      return () => unlisten();
    },
    close: async () => {
      await client.close();
      release();
    },
  };
}

/**
 * The database thread: PGlite served on a Unix socket (pglite-server.ts) in a worker, and a `pg` pool to it. The
 * socket sits in the data folder (only its owner may open it: the server has no password), or in a private
 * temporary folder when that path is too long for a socket (about 100 bytes) or the database is in memory.
 */
async function openPgliteThread(
  dataDir: string,
  poolMax: number,
  migrate: boolean,
  snapshot: Blob | undefined,
  holder: string,
): Promise<Database> {
  const release = lockFolder(dataDir, holder);
  try {
    return await startPgliteThread(dataDir, poolMax, migrate, snapshot, release);
  } catch (err) {
    release();
    throw err;
  }
}

async function startPgliteThread(
  dataDir: string,
  poolMax: number,
  migrate: boolean,
  snapshot: Blob | undefined,
  release: () => void,
): Promise<Database> {
  const inMemory = dataDir.startsWith('memory://');
  if (!inMemory) mkdirSync(dataDir, { recursive: true });
  const socketDir = !inMemory && path.resolve(dataDir).length < 80 ? path.resolve(dataDir) : mkdtempSync(path.join(os.tmpdir(), 'pglite-'));
  const socketPath = path.join(socketDir, '.s.PGSQL.5432');
  const loadDataDir = snapshot && (await snapshot.arrayBuffer());
  // execArgv []: the parent's flags (`--import` of a loader or a preload) are not the thread's business, and a
  // TypeScript preload would fail there (the thread loads its own code, pglite-thread.mjs).
  const worker = new Worker(new URL('./pglite-thread.mjs', import.meta.url), {
    execArgv: [],
    workerData: { dataDir, socketPath, loadDataDir },
    ...(loadDataDir && { transferList: [loadDataDir] }),
  });
  await new Promise<void>((resolve, reject) => {
    worker.once('message', (m: { ready?: true; error?: string }) =>
      m.ready ? resolve() : reject(new Error(`the embedded database did not start: ${m.error}`)),
    );
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the embedded database thread exited (${code}) while starting`)));
  });
  let closing = false;
  // Without its database the service can do nothing right: end the process (a supervisor starts it again) rather
  // than answer every request with a connection error.
  worker.on('exit', (code) => {
    if (!closing)
      setImmediate(() => {
        throw new Error(`the embedded database thread stopped (exit code ${code})`);
      });
  });
  const stopThread = async () => {
    closing = true;
    const closed = new Promise<void>((resolve) => {
      worker.on('message', (m: { closed?: true }) => m.closed && resolve());
      worker.once('exit', () => resolve());
    });
    worker.postMessage('close');
    await closed;
    await worker.terminate();
  };
  const database = await openPostgres(
    { host: socketDir, port: 5432, user: 'postgres', database: 'postgres' },
    poolMax,
    migrate,
    'embedded',
  ).catch(async (err: unknown) => {
    await stopThread();
    throw err;
  });
  return {
    ...database,
    close: async () => {
      await database.close();
      await stopThread();
      release();
    },
  };
}

/** A pool of `pg` connections with the session settings every connection gets. */
function newPool(connection: DatabaseConnection, poolMax: number): pg.Pool {
  const pool = new pg.Pool({
    ...connection,
    max: poolMax,
    connectionTimeoutMillis: 5_000,
    // Run and awaited before the new connection is handed out (a query queued from the 'connect' event would run
    // beside the caller's, which pg deprecates). A server whose pgvector lacks these settings fails the statement;
    // searches then still work, with pgvector's defaults.
    onConnect: async (client) => {
      await client.query(SESSION_SETTINGS).catch(() => {});
    },
  });
  // An idle client that loses its server emits 'error'; without a listener it would crash the process.
  pool.on('error', () => {});
  return pool;
}

/** The database another thread opened (its `connection`), from a worker thread: no migrations, no locks. */
export function connectDatabase(connection: DatabaseConnection, poolMax: number, kind: Database['kind']): Database {
  return databaseOn(newPool(connection, poolMax), connection, kind);
}

function databaseOn(pool: pg.Pool, connection: DatabaseConnection, kind: Database['kind']): Database {
  const db = drizzleNodePg({ client: pool, schema });
  return {
    db: db as unknown as Db,
    kind,
    connection,
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    listen: (channel, onNotify) => listenOverWire(connection, channel, onNotify),
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: () => pool.end(),
  };
}

async function openPostgres(connection: DatabaseConnection, poolMax: number, migrate: boolean, kind: Database['kind']): Promise<Database> {
  const pool = newPool(connection, poolMax);
  const url = connection.connectionString ?? 'postgres://postgres@localhost/postgres';
  const lockClient = await pool.connect().catch(async (err: unknown) => {
    await pool.end().catch(() => {});
    throw connectionFailure(url, err);
  });
  try {
    await requirePgvector(lockClient, url);
    if (migrate) {
      await lockClient.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
      await migrateNodePg(drizzleNodePg({ client: lockClient, schema }), { migrationsFolder });
    }
  } finally {
    if (migrate) await lockClient.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => {});
    lockClient.release();
  }
  return databaseOn(pool, connection, kind);
}

/** A connection of its own LISTENing on `channel` (Database.listen), made again whenever it is lost. */
async function listenOverWire(connection: pg.PoolConfig, channel: string, onNotify: () => void): Promise<() => Promise<void>> {
  let active: pg.Client | undefined;
  let stopped = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async () => {
    const client = new pg.Client(connection);
    client.on('notification', (m) => m.channel === channel && onNotify());
    // A lost connection emits 'error' then 'end': reconnecting is 'end''s business.
    client.on('error', () => {});
    client.on('end', () => {
      if (active !== client) return;
      active = undefined;
      if (!stopped) retry = setTimeout(reconnect, 1000).unref();
    });
    try {
      await client.connect();
      await client.query(`listen ${client.escapeIdentifier(channel)}`);
    } catch (err) {
      await client.end().catch(() => {});
      throw err;
    }
    if (stopped) return void (await client.end().catch(() => {}));
    active = client;
  };
  const reconnect = () =>
    void connect().then(onNotify, () => {
      if (!stopped) retry = setTimeout(reconnect, 1000).unref();
    });
  await connect();
  return async () => {
    stopped = true;
    clearTimeout(retry);
    const client = active;
    active = undefined;
    await client?.end().catch(() => {});
  };
}

/** Where a URL points, for messages: host:port/database, never the user or password. */
function describeServer(url: string): { where: string; user: string; database: string } {
  const u = new URL(url);
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'postgres';
  return { where: `${u.hostname || 'localhost'}:${u.port || '5432'}`, user: decodeURIComponent(u.username) || 'postgres', database };
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ECONNRESET']);

/**
 * A failed first connection as one line a person can act on: a server that does not answer, or one that refuses
 * the login or has no such database (PostgreSQL's SQLSTATE 28000/28P01, 3D000). Anything else is left as it is.
 */
function connectionFailure(url: string, err: unknown): unknown {
  const { where, user, database } = describeServer(url);
  const code = socketErrorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if ((code && UNREACHABLE.has(code)) || /timeout/i.test(message)) {
    return new StartupError(
      'databaseUnreachable',
      `cannot reach the database at ${where} (${code ?? 'connection timed out'}): start PostgreSQL there or fix DATABASE_URL`,
    );
  }
  if (code === '28P01' || code === '28000') {
    return new StartupError(
      'databaseLogin',
      `the database at ${where} refused the login of user "${user}" (${message}): fix the user and password in DATABASE_URL`,
    );
  }
  if (code === '3D000') {
    return new StartupError('databaseLogin', `the database "${database}" does not exist at ${where}: create it or fix DATABASE_URL`);
  }
  return err;
}

/**
 * The first migration creates pgvector; a server without it would fail there with a long error and its useful line
 * buried. Checked before migrating, so nothing is written to such a server.
 */
async function requirePgvector(client: pg.PoolClient, url: string): Promise<void> {
  const { rows } = await client.query<{ ok: boolean }>(
    "select exists (select 1 from pg_extension where extname = 'vector') or exists (select 1 from pg_available_extensions where name = 'vector') as ok",
  );
  if (!rows[0]?.ok) {
    throw new StartupError(
      'pgvectorMissing',
      `pgvector is not installed in this database (${describeServer(url).where}): install the extension ` +
        '(https://github.com/pgvector/pgvector#installation) or unset DATABASE_URL to use the embedded default',
    );
  }
}

/** PGlite answers { rows }, node-postgres answers a QueryResult with rows too; both are normalised here. */
export function rowsOf<T>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? (result as T[])) as T[];
}

/**
 * A row of `table` as a raw statement returns it (`returning *` of a statement Drizzle's builder cannot make): its
 * columns by their database names, each mapped from the driver's value as a Drizzle query maps it.
 */
export function fromRow<T extends Table>(table: T, raw: Record<string, unknown>): T['$inferSelect'] {
  return Object.fromEntries(
    Object.entries(getTableColumns(table)).map(([key, column]) => {
      const value = raw[column.name];
      return [key, value === null || value === undefined ? null : column.mapFromDriverValue(value)];
    }),
  ) as T['$inferSelect'];
}
