// Database connection: embedded PGlite (with pgvector) in the data folder by default, PostgreSQL through `pg`
// when DATABASE_URL is set. Both give the same Drizzle API; migrations are applied here at start-up.
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { btree_gin } from '@electric-sql/pglite/contrib/btree_gin';
import { vector } from '@electric-sql/pglite-pgvector';
import { sql } from 'drizzle-orm';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { drizzle as drizzleNodePg } from 'drizzle-orm/node-postgres';
import { migrate as migrateNodePg } from 'drizzle-orm/node-postgres/migrator';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import pg from 'pg';
import { lockDataDir } from './data-dir-lock.js';
import * as schema from './schema.js';

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>;

export interface Database {
  db: Db;
  /** 'embedded' (PGlite in-process) or 'postgres' (a server over the wire). */
  kind: 'embedded' | 'postgres';
  ping(): Promise<void>;
  close(): Promise<void>;
  /** The `pg` pool's connections now (operator metrics); absent for PGlite, which has no pool. */
  poolStats?(): { total: number; idle: number; waiting: number };
}

/** The extensions the migrations create; anything opening a PGlite database of ours loads the same. */
export const PGLITE_EXTENSIONS = { vector, btree_gin };

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
  /** Who opens an embedded folder, named in the refusal another process gets meanwhile (db/data-dir-lock.ts). */
  holder?: string;
}

export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  return opts.url ? openPostgres(opts.url, opts.poolMax) : openPglite(opts.dataDir, opts.snapshot, opts.holder ?? 'the service');
}

const BYTEA = 17;
// PGlite's own bytea codecs go byte by byte in JavaScript: a 19 MB document took 5 s to store and 2 s to read,
// all of it blocking the event loop (every request and live call). Node's hex codec does the same in milliseconds.
const byteaToHex = (v: Uint8Array) => `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
const byteaFromHex = (v: string) => new Uint8Array(Buffer.from(v.slice(2), 'hex'));

async function startPglite(dataDir: string, loadDataDir?: Blob) {
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
  await migratePglite(db, { migrationsFolder });
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

async function openPglite(dataDir: string, snapshot: Blob | undefined, holder: string): Promise<Database> {
  // A folder is one process's at a time: a backup, restore or second service meanwhile is refused.
  const release = dataDir.startsWith('memory://')
    ? () => {}
    : (mkdirSync(path.dirname(dataDir), { recursive: true }), lockDataDir(dataDir, holder));
  let started;
  try {
    started = await startPglite(dataDir, snapshot);
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
    close: async () => {
      await client.close();
      release();
    },
  };
}

async function openPostgres(url: string, poolMax: number): Promise<Database> {
  const pool = new pg.Pool({ connectionString: url, max: poolMax, connectionTimeoutMillis: 5_000 });
  // An idle client that loses its server emits 'error'; without a listener it would crash the process.
  pool.on('error', () => {});
  // Queued on a new connection before anything else it runs. A server whose pgvector lacks these settings fails
  // the statement; searches then still work, with pgvector's defaults.
  pool.on('connect', (client) => void client.query(SESSION_SETTINGS).catch(() => {}));
  const lockClient = await pool.connect();
  try {
    await lockClient.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_ID]);
    await migrateNodePg(drizzleNodePg({ client: lockClient, schema }), { migrationsFolder });
  } finally {
    await lockClient.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_ID]).catch(() => {});
    lockClient.release();
  }
  const db = drizzleNodePg({ client: pool, schema });
  return {
    db: db as unknown as Db,
    kind: 'postgres',
    poolStats: () => ({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }),
    ping: async () => {
      await db.execute(sql`select 1`);
    },
    close: () => pool.end(),
  };
}

/** PGlite answers { rows }, node-postgres answers a QueryResult with rows too; both are normalised here. */
export function rowsOf<T>(result: unknown): T[] {
  return ((result as { rows?: T[] }).rows ?? (result as T[])) as T[];
}
