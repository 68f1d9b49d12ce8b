// The embedded database server's cache of parsed statements (pglite-server.ts). `pg` sends every query with
// parameters as an unnamed Parse, so PGlite parses, analyses and rewrites the same text again at every round trip:
// about half of the database thread's time for a short query (a call makes ~65). The server names each text the
// first time (Parse `s<n>`) and afterwards sends only its Bind, answering the Parse itself: PostgreSQL then reuses
// the parsed statement (and its plan cache) as it does for a client's own prepared statements. The connections
// share PGlite's one session, so one name serves them all. Nothing changes for the client: the reply is the one an
// unnamed Parse gets.
//
// Only the round trips `pg` makes are rewritten: an unnamed Parse first, then Bind, Describe, Execute and Sync
// naming the unnamed statement. Anything else (a client's own named statement, several Parses in one round trip)
// goes through as sent.

/**
 * Marks a query text (an SQL comment anywhere in it) whose plan must be made for its parameters at every run: the
 * server otherwise lets PostgreSQL plan a cached statement once (generic plan; see pglite-server.ts), and a search's
 * plan must see its tenant (a small tenant's chunks are read by the tenant index, a large one's by GIN or HNSW).
 */
export const CUSTOM_PLAN = '/* custom plan */';

/** Texts kept at most; the least recently used are closed beyond it (a few hundred distinct queries in practice). */
export const STATEMENT_CACHE_SIZE = 500;

const PARSE = 0x50; // 'P'
const BIND = 0x42; // 'B'
const DESCRIBE = 0x44; // 'D'
const CLOSE = 0x43; // 'C'
const ERROR = 0x45; // 'E'
const PARSE_COMPLETE = Buffer.from([0x31, 0, 0, 0, 4]);
/**
 * Errors after which a cached statement is dropped and the round trip made again with its own Parse (outside a
 * transaction; nothing ran: both are raised at Bind): a table's columns changed under a `select *`
 * (0A000 "cached plan must not change result type"), or the statement is gone (26000: a DEALLOCATE ALL).
 */
const STALE = new Set(['0A000', '26000']);

export interface Rewritten {
  /** The messages to give PGlite. */
  input: Buffer;
  /** The text is marked CUSTOM_PLAN. */
  customPlan: boolean;
  /** Fixes PGlite's reply up for the client, and says whether to run the original round trip again (stale). */
  reply(raw: Uint8Array, inTransaction: boolean): { reply: Uint8Array; retry?: Buffer };
}

export class StatementCache {
  /** Parse body (text and parameter types) -> statement name; in order of last use. */
  private readonly names = new Map<string, string>();
  /** Names evicted, to close when no transaction is open. */
  private closing: string[] = [];
  private counter = 0;

  constructor(private readonly size = STATEMENT_CACHE_SIZE) {}

  /** The Close messages (and a Sync) of evicted statements, to run between round trips; undefined when none. */
  takeCloses(): Buffer | undefined {
    if (!this.closing.length) return undefined;
    const closes = this.closing.map((name) => message(CLOSE, Buffer.concat([Buffer.from('S'), cString(name)])));
    this.closing = [];
    return Buffer.concat([...closes, message(0x53, Buffer.alloc(0))]);
  }

  /** The round trip as PGlite should get it, or undefined to send `messages` as they are. */
  rewrite(messages: Buffer[]): Rewritten | undefined {
    const first = messages[0];
    if (!first || first[0] !== PARSE || first[5] !== 0) return undefined;
    // An unnamed Parse: its body after the (empty) name is the query text and its parameter types.
    const key = first.toString('latin1', 6);
    const rest = messages.slice(1);
    if (!rest.every(isUnnamedReference)) return undefined;
    const customPlan = key.includes(CUSTOM_PLAN);
    const known = this.names.get(key);
    if (known !== undefined) {
      // Most recently used last.
      this.names.delete(key);
      this.names.set(key, known);
      const input = Buffer.concat(rest.map((m) => named(m, known)));
      return {
        input,
        customPlan,
        reply: (raw, inTransaction) => {
          const code = errorCode(raw);
          if (code !== undefined && STALE.has(code)) {
            this.forget(key, known);
            if (!inTransaction) return { reply: raw, retry: Buffer.concat(messages) };
          }
          return { reply: concat(PARSE_COMPLETE, raw) };
        },
      };
    }
    const name = `s${++this.counter}`;
    const input = Buffer.concat([message(PARSE, Buffer.concat([cString(name), first.subarray(6)])), ...rest.map((m) => named(m, name))]);
    return {
      input,
      customPlan,
      reply: (raw) => {
        // Kept only when PGlite parsed it (a failed Parse makes no statement).
        if (raw[0] === PARSE_COMPLETE[0]) this.remember(key, name);
        return { reply: raw };
      },
    };
  }

  private remember(key: string, name: string): void {
    this.names.set(key, name);
    if (this.names.size <= this.size) return;
    const [oldestKey, oldestName] = this.names.entries().next().value as [string, string];
    this.forget(oldestKey, oldestName);
  }

  private forget(key: string, name: string): void {
    if (this.names.get(key) === name) this.names.delete(key);
    this.closing.push(name);
  }
}

/** Bind or Describe naming the unnamed statement (or a portal: those are left as they are), or Execute/Sync/Flush. */
function isUnnamedReference(m: Buffer): boolean {
  switch (m[0]) {
    case PARSE:
      return false;
    case BIND: {
      // Bind: the portal's name, then the statement's: both unnamed in what `pg` sends.
      return m[5] === 0 && m[6] === 0;
    }
    case DESCRIBE:
      // 'S' names a statement ('' only), 'P' a portal.
      return m[5] !== 0x53 || m[6] === 0;
    case CLOSE:
      // Closing the statement would close the cached one: such a round trip goes as it is.
      return false;
    default:
      return true;
  }
}

/** The message with the unnamed statement it refers to replaced by `name` (portals and other messages unchanged). */
function named(m: Buffer, name: string): Buffer {
  if (m[0] === BIND) return message(BIND, Buffer.concat([Buffer.from([0]), cString(name), m.subarray(7)]));
  if (m[0] === DESCRIBE && m[5] === 0x53) return message(DESCRIBE, Buffer.concat([Buffer.from('S'), cString(name)]));
  return m;
}

function message(type: number, body: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head[0] = type;
  head.writeInt32BE(4 + body.length, 1);
  return Buffer.concat([head, body]);
}

const cString = (text: string): Buffer => Buffer.from(`${text}\0`, 'utf8');

function concat(a: Buffer, b: Uint8Array): Buffer {
  return Buffer.concat([a, b]);
}

/** The SQLSTATE of the first ErrorResponse in a reply, if any. */
export function errorCode(reply: Uint8Array): string | undefined {
  const buf = Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
  let at = 0;
  while (at + 5 <= buf.length) {
    const end = at + 1 + buf.readInt32BE(at + 1);
    if (buf[at] === ERROR) {
      // Fields: a type byte and a C string each, ended by a zero byte; 'C' is the SQLSTATE.
      let f = at + 5;
      while (f < end && buf[f] !== 0) {
        const zero = buf.indexOf(0, f + 1);
        if (buf[f] === 0x43) return buf.toString('latin1', f + 1, zero);
        f = zero + 1;
      }
      return undefined;
    }
    at = end;
  }
  return undefined;
}
