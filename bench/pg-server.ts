// A Postgres server for benchmarks: PGlite (with pgvector) served over the Postgres wire protocol in its own
// process, as a real database server would run beside the service. Prints its URL on the first line of stdout.
//   npx tsx bench/pg-server.ts [--load <data-dir dump>]   (--load: start from a PGlite dumpDataDir tarball, e.g. the
//                                                        migrated test snapshot, instead of an empty database)
//
// Many connections, as a real server takes, so the service's pool works as it does against PostgreSQL: its
// round trips overlap instead of queueing behind one connection. PGlite itself runs one statement at a time, so
// the connections take turns a whole batch at a time (everything up to a Sync or a simple Query, which is what
// one statement's round trip is), and a connection that leaves a transaction open keeps its turn until it ends
// it. (pglite-socket's own multiplexer takes turns message by message, which lets one connection's Parse meet
// another's Bind.)
import { readFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { PGlite } from '@electric-sql/pglite';
import { PGLITE_EXTENSIONS } from '../src/db/client.js';

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;

const loadAt = process.argv.indexOf('--load');
const load = loadAt > 0 ? new Blob([readFileSync(process.argv[loadAt + 1]!)]) : undefined;
const pglite = await PGlite.create({ dataDir: 'memory://', extensions: PGLITE_EXTENSIONS, ...(load && { loadDataDir: load }) });

/** Whose turn it is: the turns are a promise chain; `owner` holds on while its transaction is open. */
let turns: Promise<void> = Promise.resolve();
let owner: Serve | undefined;
let ownerRelease: (() => void) | undefined;

function takeTurn(conn: Serve): Promise<() => void> {
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

class Serve {
  private buffer = Buffer.alloc(0);
  private batch: Buffer[] = [];
  private work: Promise<void> = Promise.resolve();
  private started = false;

  constructor(private readonly socket: Socket) {
    socket.setNoDelay(true);
    socket.on('data', (data) => this.onData(data));
    socket.on('error', () => socket.destroy());
    // A connection that goes away inside its transaction must not keep the others waiting.
    socket.on('close', () => {
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
    this.buffer = Buffer.concat([this.buffer, data]);
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
      this.batch.push(message);
      // Sync ends an extended-protocol round trip; a simple Query is one by itself.
      if (type === 'S' || type === 'Q') {
        this.run(this.batch);
        this.batch = [];
      }
    }
  }

  private run(messages: Buffer[]): void {
    this.work = this.work.then(async () => {
      const release = await takeTurn(this);
      try {
        for (const message of messages) {
          const reply = await pglite.execProtocolRaw(message);
          if (reply.length && !this.socket.destroyed) this.socket.write(reply);
        }
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

const server = createServer((socket) => new Serve(socket));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const address = server.address();
if (!address || typeof address === 'string') throw new Error('no TCP address');
console.log(`postgres://postgres:postgres@127.0.0.1:${address.port}/postgres`);
// Ends with its parent: stdin closes when the benchmark exits.
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
