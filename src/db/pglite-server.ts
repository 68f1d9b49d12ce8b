// PGlite (with pgvector) served over the Postgres wire protocol: the embedded database in a thread of its own
// (pglite-thread.mjs, EMBEDDED_DB_THREAD), so its queries, which run synchronously inside PGlite's WebAssembly,
// never hold up the event loop that carries live calls' audio; and the benchmarks' database server process
// (bench/pg-server.ts). The service talks to it with `pg`, as to PostgreSQL.
//
// Many connections, as a real server takes, so a `pg` pool works as it does against PostgreSQL: its round trips
// overlap instead of queueing behind one connection. PGlite itself runs one statement at a time, so the
// connections take turns a whole batch at a time (everything up to a Sync or a simple Query, which is what one
// statement's round trip is), and a connection that leaves a transaction open keeps its turn until it ends it.
// (pglite-socket's own multiplexer takes turns message by message, which lets one connection's Parse meet
// another's Bind.) There is no authentication: listen on a Unix socket only its owner can open (or loopback, for
// a benchmark).
//
// LISTEN/NOTIFY: the connections share PGlite's one session, so a notification comes out in the reply of whichever
// connection's statement committed it. It is taken out of that reply and sent to the connections that asked to
// LISTEN on its channel (a simple-protocol `LISTEN name`, as `pg` sends it), as PostgreSQL would.
import { lowerThreadPriority, THREAD_NICE } from '../lib/thread-priority.js';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from './pglite-extensions.js';
import { StatementCache } from './statement-cache.js';

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;

/**
 * Serves `pglite` to every connection `server` accepts (the caller listens). `statementCacheSize`: the query texts
 * kept parsed (statement-cache.ts).
 */
export function servePglite(pglite: PGlite, opts: { statementCacheSize?: number } = {}): Server {
  /** Whose turn it is: the turns are a promise chain; `owner` holds on while its transaction is open. */
  let turns: Promise<void> = Promise.resolve();
  let owner: Connection | undefined;
  let ownerRelease: (() => void) | undefined;
  /** Who listens on what: channel -> connections. */
  const listeners = new Map<string, Set<Connection>>();
  /** PGlite's session has listened on something (UNLISTEN never reaches it): replies may carry notifications. */
  let subscribed = false;
  /** Each query text is parsed once for every connection (statement-cache.ts). */
  const statements = new StatementCache(opts.statementCacheSize);

  /**
   * How PostgreSQL plans a cached statement (plan_cache_mode). By default as it does any prepared statement (auto):
   * for its parameters at its first five runs, then once for all runs (a generic plan) when that is estimated no
   * dearer. Planning was most of the database's time for a call's statements (a transcript turn's insert took
   * twice as long planned at every run). A text marked CUSTOM_PLAN is planned for its parameters at every run (a
   * search must see its tenant): the mode is switched before it, outside a transaction (where no rollback undoes
   * the switch); inside one, its round trip goes as sent (an unnamed statement is planned at every run).
   */
  let planMode: 'auto' | 'force_custom_plan' = 'auto';
  /**
   * Generic plans are made again every PLAN_REFRESH_MS: a plan is otherwise kept until its tables are analyzed, and
   * PGlite has no autovacuum to analyze them as they grow (only the knowledge tables are, rag/term-stats.ts).
   */
  let plansMadeAt = performance.now();

  /** One round trip's reply from PGlite, through the statement cache. */
  async function execute(messages: Buffer[]): Promise<Uint8Array> {
    const inTransaction = pglite.isInTransaction();
    if (!inTransaction) {
      const closes = statements.takeCloses();
      if (closes) await replyOf(pglite, closes);
      if (performance.now() - plansMadeAt > PLAN_REFRESH_MS) {
        await pglite.exec('discard plans');
        plansMadeAt = performance.now();
      }
    }
    const rewritten = statements.rewrite(messages);
    if (!rewritten || (rewritten.customPlan && inTransaction))
      return replyOf(pglite, messages.length === 1 ? messages[0]! : Buffer.concat(messages));
    const mode = rewritten.customPlan ? 'force_custom_plan' : 'auto';
    if (!inTransaction && mode !== planMode) {
      await pglite.exec(`set plan_cache_mode = ${mode}`);
      planMode = mode;
    }
    const { reply, retry } = rewritten.reply(await replyOf(pglite, rewritten.input), pglite.isInTransaction());
    return retry ? replyOf(pglite, retry) : reply;
  }

  function takeTurn(conn: Connection): Promise<() => void> {
    if (owner === conn && ownerRelease) {
      const release = ownerRelease;
      ownerRelease = undefined;
      return Promise.resolve(release);
    }
    const before = turns;
    let release!: () => void;
    turns = new Promise((r) => (release = r));
    return before.then(() => {
      owner = conn;
      return release;
    });
  }

  class Connection {
    private buffer: Buffer = Buffer.alloc(0);
    private batch: Buffer[] = [];
    private work: Promise<void> = Promise.resolve();
    private started = false;

    constructor(private readonly socket: Socket) {
      socket.setNoDelay?.(true);
      socket.on('data', (data) => this.onData(data));
      socket.on('error', () => socket.destroy());
      // A connection that goes away inside its transaction must not keep the others waiting.
      socket.on('close', () => {
        for (const [channel, conns] of listeners) if (conns.delete(this) && conns.size === 0) listeners.delete(channel);
        this.work = this.work.then(async () => {
          if (owner !== this || !ownerRelease) return;
          if (pglite.isInTransaction()) await pglite.exec('rollback').catch(() => {});
          owner = undefined;
          const release = ownerRelease;
          ownerRelease = undefined;
          release();
        });
      });
    }

    private onData(data: Buffer): void {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
      for (;;) {
        if (!this.started) {
          // Untyped start-up messages: length, then a code.
          if (this.buffer.length < 8) return;
          const length = this.buffer.readInt32BE(0);
          const code = this.buffer.readInt32BE(4);
          if (this.buffer.length < length) return;
          const message = this.buffer.subarray(0, length);
          this.buffer = this.buffer.subarray(length);
          if (code === SSL_REQUEST) this.socket.write('N');
          else if (code === CANCEL_REQUEST) this.socket.destroy();
          else if (code === PROTOCOL_3) {
            this.started = true;
            this.run([Buffer.from(message)]);
          }
          continue;
        }
        if (this.buffer.length < 5) return;
        const length = 1 + this.buffer.readInt32BE(1);
        if (this.buffer.length < length) return;
        const message = Buffer.from(this.buffer.subarray(0, length));
        this.buffer = this.buffer.subarray(length);
        const type = String.fromCharCode(message[0]!);
        if (type === 'X') return void this.socket.end();
        if (type === 'Q' && this.noteListen(message) === 'unlisten' && this.batch.length === 0) {
          this.answerUnlisten();
          continue;
        }
        this.batch.push(message);
        // Sync ends an extended-protocol round trip; a simple Query is one by itself.
        if (type === 'S' || type === 'Q') {
          this.run(this.batch);
          this.batch = [];
        }
      }
    }

    /** Sent whenever it comes: a listening connection is idle between its statements. */
    notify(message: Buffer): void {
      if (!this.socket.destroyed) this.socket.write(message);
    }

    /** A simple-protocol LISTEN or UNLISTEN: who gets which channel's notifications. */
    private noteListen(message: Buffer): 'listen' | 'unlisten' | undefined {
      const m = LISTEN.exec(message.toString('utf8', 5, message.length - 1));
      if (!m) return undefined;
      const channel = m[3] ?? m[2]!.toLowerCase();
      if (!m[1]) {
        if (!listeners.has(channel)) listeners.set(channel, new Set());
        listeners.get(channel)!.add(this);
        subscribed = true;
        return 'listen';
      }
      for (const [name, conns] of listeners)
        if ((channel === '*' || name === channel) && conns.delete(this) && conns.size === 0) listeners.delete(name);
      return 'unlisten';
    }

    /**
     * UNLISTEN is answered here and never reaches PGlite: its one session is every connection's, so it would stop
     * the channel for the other connections still listening. PGlite staying subscribed costs nothing: a
     * notification nobody listens to is dropped by routeNotifications.
     */
    private answerUnlisten(): void {
      this.work = this.work.then(() => {
        if (this.socket.destroyed) return;
        const inTransaction = owner === this && pglite.isInTransaction();
        this.socket.write(
          Buffer.concat([backendMessage('C', cString('UNLISTEN')), backendMessage('Z', Buffer.from(inTransaction ? 'T' : 'I'))]),
        );
      });
    }

    private run(messages: Buffer[]): void {
      this.work = this.work.then(async () => {
        const release = await takeTurn(this);
        try {
          // The round trip's messages (Parse, Bind, Describe, Execute, Sync) in one call and its reply in one write:
          // PGlite runs every message of the buffer it is given (after an error it skips to Sync, as PostgreSQL
          // does), and a call and a write per message cost both threads about five times the CPU of a query.
          const raw = await execute(messages);
          const reply = subscribed ? routeNotifications(raw) : raw;
          if (reply.length && !this.socket.destroyed) this.socket.write(reply);
        } finally {
          if (pglite.isInTransaction() && !this.socket.destroyed) {
            ownerRelease = release;
          } else {
            // Gone in the middle of its transaction: nobody else may run inside it.
            if (pglite.isInTransaction()) await pglite.exec('rollback').catch(() => {});
            owner = undefined;
            release();
          }
        }
      });
    }
  }

  /** The reply without its NotificationResponse messages, which go to the connections listening on their channel. */
  function routeNotifications(reply: Uint8Array): Uint8Array {
    const buf = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
    const kept: Buffer[] = [];
    let at = 0;
    let from = 0;
    while (at + 5 <= buf.length) {
      const end = at + 1 + buf.readInt32BE(at + 1);
      if (buf[at] === NOTIFICATION) {
        if (at > from) kept.push(buf.subarray(from, at));
        const message = Buffer.from(buf.subarray(at, end));
        const channel = message.toString('utf8', 9, message.indexOf(0, 9));
        for (const conn of listeners.get(channel) ?? []) conn.notify(message);
        from = end;
      }
      at = end;
    }
    if (from === 0) return reply;
    if (from < buf.length) kept.push(buf.subarray(from));
    return Buffer.concat(kept);
  }

  return createServer((socket) => new Connection(socket));
}

/** How often cached statements' generic plans are made again (servePglite's plansMadeAt). */
const PLAN_REFRESH_MS = 60_000;
/** NotificationResponse: 'A', length, the notifying process id, the channel and the payload (C strings). */
const NOTIFICATION = 'A'.charCodeAt(0);
const cString = (text: string): Buffer => Buffer.from(`${text}\0`, 'utf8');
/** A backend message: its type, its length (which counts itself), its body. */
function backendMessage(type: string, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}
const LISTEN = /^\s*(un)?listen\s+(\*|"([^"]+)"|[A-Za-z_][A-Za-z0-9_$]*)\s*;?\s*$/i;

export interface PgliteServerOptions {
  /** PGlite's data directory (created if missing), or `memory://`. */
  dataDir: string;
  /** The Unix socket to listen on (a stale one from a crashed run is replaced); made readable by its owner only. */
  socketPath: string;
  /** A database to start from (a `dumpDataDir` tarball: tests' migrated snapshot). */
  loadDataDir?: ArrayBuffer;
}

/**
 * PGlite's reply to a round trip's messages, as the bytes it wrote. Not `execProtocolRaw`, which returns the same
 * bytes but also parses every message of the reply into objects and keeps them in a list that only PGlite's own
 * `exec`/`query` empty: the database thread's CPU went into parsing replies nobody reads, and what it kept survived
 * to the old generation, where the garbage collector traced it. Measured alone (PGlite in memory, 5,000 round
 * trips each): a select of one row 62.6 -> 33.3 us of CPU, of 20 rows 146 -> 26 us, an insert ... returning 73.7
 * -> 46.7 us; and without an `exec` between them the heap grew 4.7 MB per thousand 20-row selects.
 * PGlite keeps the callback given here for its output until its own next `exec` or `query`: an `execProtocolRaw`
 * on the same instance in between would find its reply empty. The server makes its round trips only through here.
 */
export async function replyOf(pglite: PGlite, message: Uint8Array): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let length = 0;
  await pglite.execProtocolRawStream(message, {
    // A view of PGlite's memory, written over by its next output: copied.
    onRawData: (data) => {
      parts.push(data.slice());
      length += data.length;
    },
  });
  if (parts.length === 1) return parts[0]!;
  const reply = new Uint8Array(length);
  let at = 0;
  for (const part of parts) {
    reply.set(part, at);
    at += part.length;
  }
  return reply;
}

/** The embedded database thread's work (pglite-thread.mjs): PGlite opened on `dataDir`, served on `socketPath`. */
export async function startPgliteServer(opts: PgliteServerOptions): Promise<{ close(): Promise<void> }> {
  // On the database's own thread (pglite-thread.mjs): below the event loop, a little (lib/thread-priority.ts).
  lowerThreadPriority('pglite', THREAD_NICE.pglite);
  if (!opts.dataDir.startsWith('memory://')) mkdirSync(opts.dataDir, { recursive: true });
  const pglite = await PGlite.create({
    dataDir: opts.dataDir,
    extensions: PGLITE_EXTENSIONS,
    ...(opts.loadDataDir && { loadDataDir: new Blob([opts.loadDataDir]) }),
  });
  const server = servePglite(pglite);
  rmSync(opts.socketPath, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.socketPath, resolve);
  });
  chmodSync(opts.socketPath, 0o600);
  return {
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      // Closing PGlite writes what it holds to the data directory: after the last connection's work.
      await pglite.close();
      rmSync(opts.socketPath, { force: true });
    },
  };
}
