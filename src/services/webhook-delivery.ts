// The webhook delivery worker: claims due deliveries from the database (FOR UPDATE SKIP LOCKED under a lease, so any
// number of instances share them and a crashed instance's claims come back when the lease runs out), POSTs each
// event with Standard Webhooks headers through the outbound guard, logs the attempt, and schedules a retry with
// exponential backoff and jitter (or the receiver's Retry-After) for 24 hours. Events of one call reach an endpoint
// in order: a later one waits while an earlier one is pending. An endpoint failing for 3 days without a success is
// disabled and the tenant's other endpoints get `endpoint.disabled`. Time comes from `now()`, so the schedule and the
// 3-day rule are tested in virtual time.
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { type Db, rowsOf } from '../db/client.js';
import { refusedByGuard } from '../lib/outbound.js';
import { webhookHeaders } from '../lib/webhook-signature.js';
import { publishEvent } from './outbox.js';
import { Waker } from '../lib/worker-loops.js';

export interface WebhookDeliveryOptions {
  /** Deliveries in flight at once in this instance; 0 runs no worker here. */
  concurrency: number;
  /** A claim older than this is taken to be abandoned (its instance died); keep it well above timeoutMs. */
  leaseMs: number;
  /** Delivered and failed rows (and their attempts) are deleted this long after they finished. */
  retentionMs: number;
  /** One request's budget (10 s). */
  timeoutMs?: number;
  /** Retries stop this long after the event (24 h). */
  retryWindowMs?: number;
  /** Failing without a success for this long disables an endpoint (3 days). */
  disableAfterMs?: number;
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /**
   * How often an idle worker looks for due deliveries (retries coming due; anything a lost notification left):
   * 500 ms without `listen`, 5 s with it.
   */
  pollMs?: number;
  /**
   * Calls `onNotify` for each new delivery committed by any instance (the database's LISTEN on WEBHOOK_CHANNEL,
   * which publishEvent NOTIFYs); returns how to stop. Without it (or when it fails at start) the worker polls.
   */
  listen?: (onNotify: () => void) => Promise<() => Promise<void>>;
  /** Epoch ms; virtual in tests. */
  now?: () => number;
  /** [0, 1); the jitter's source. */
  random?: () => number;
  /** Each attempt's outcome and the seconds since its event was stored (operator metrics). */
  onAttempt?: (outcome: 'delivered' | 'failed', seconds: number) => void;
}

/** What sends the request: the outbound guard's fetch (private networks refused after DNS, no redirects). */
export type Fetch = (url: string, init: RequestInit) => Promise<Response>;

export interface SigningSecrets {
  secretsOf(endpoint: { secret: string; previousSecret: string | null; previousSecretExpiresAt: Date | null }, nowMs: number): string[];
}

interface Claimed {
  id: string;
  tenant_id: string;
  endpoint_id: string;
  event_id: string;
  attempts: number;
  retry_until: string | Date;
  type: string;
  created_at: string | Date;
  data: Record<string, unknown> | string;
  url: string;
  secret: string;
  previous_secret: string | null;
  previous_secret_expires_at: string | Date | null;
}

interface Outcome {
  ok: boolean;
  statusCode: number | null;
  latencyMs: number;
  body: string | null;
  error: string | null;
  retryAfterMs?: number;
}

export const RESPONSE_LOG_BYTES = 1024;
const PURGE_EVERY_MS = 3600_000;
/** An idle worker's poll without notifications, and with them (then only a fallback). */
const POLL_MS = 500;
const LISTENING_POLL_MS = 5000;
const PURGE_BATCH = 1000;

const ts = (ms: number) => sql`${new Date(ms).toISOString()}::timestamptz`;

export class WebhookDeliveryWorker {
  readonly workerId = `webhooks-${randomUUID()}`;
  private running = false;
  private loopDone: Promise<void> | undefined;
  private readonly inFlight = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private readonly waker = new Waker();
  private unlisten: (() => Promise<void>) | undefined;
  private lastPurge = 0;
  private readonly now: () => number;
  private readonly random: () => number;

  constructor(
    private readonly db: Db,
    private readonly secrets: SigningSecrets,
    private readonly fetch: Fetch,
    private readonly log: FastifyBaseLogger,
    private readonly opts: WebhookDeliveryOptions,
  ) {
    this.now = opts.now ?? Date.now;
    this.random = opts.random ?? Math.random;
  }

  /** `reclaimAbandoned`: an embedded database is this process's alone, so its leftover claims are released at once. */
  async start(opts: { reclaimAbandoned?: boolean } = {}): Promise<void> {
    if (opts.reclaimAbandoned) {
      await this.db.execute(sql`update webhook_deliveries set locked_by = null, locked_at = null where locked_by is not null`);
    }
    if (this.opts.concurrency < 1) return;
    if (this.opts.listen) {
      this.unlisten = await this.opts
        .listen(() => this.wake())
        .catch((err: unknown) => {
          this.log.warn({ err }, 'webhook notifications unavailable: the delivery worker polls');
          return undefined;
        });
    }
    this.running = true;
    this.loopDone = this.loop();
  }

  /** An idle worker's wait between looks: short while nothing tells it of new deliveries. */
  private get pollMs(): number {
    return this.opts.pollMs ?? (this.unlisten ? LISTENING_POLL_MS : POLL_MS);
  }

  /** Claims nothing new; requests in flight are aborted and their deliveries released (sent again later, same id). */
  async stop(): Promise<void> {
    this.running = false;
    this.abort.abort();
    this.wake();
    await this.unlisten?.().catch(() => {});
    this.unlisten = undefined;
    await this.loopDone;
    await Promise.allSettled([...this.inFlight]);
  }

  /** Something was queued (a ping, a replay): look now instead of at the next poll. */
  wake(): void {
    this.waker.wake();
  }

  /** Claims what is due (up to `concurrency`) and delivers it; the number claimed. For tests and benchmarks. */
  async runOnce(): Promise<number> {
    const rows = await this.claim(Math.max(1, this.opts.concurrency));
    await Promise.all(rows.map((r) => this.deliver(r)));
    return rows.length;
  }

  /** Runs until nothing is due (now). */
  async drain(): Promise<number> {
    let total = 0;
    for (let n; (n = await this.runOnce()) > 0;) total += n;
    return total;
  }

  private async loop(): Promise<void> {
    while (this.running) {
      const free = this.opts.concurrency - this.inFlight.size;
      // Under load, claim when half the slots are free rather than one by one: half the claim statements.
      const worthClaiming = free > 0 && (this.inFlight.size === 0 || free >= Math.ceil(this.opts.concurrency / 2));
      let claimed = 0;
      this.waker.reset();
      if (worthClaiming) {
        try {
          const rows = await this.claim(free);
          claimed = rows.length;
          for (const row of rows) {
            const p: Promise<void> = this.deliver(row)
              .catch((err: unknown) => this.log.error({ err, deliveryId: row.id }, 'webhook delivery error'))
              .finally(() => {
                this.inFlight.delete(p);
                this.wake();
              });
            this.inFlight.add(p);
          }
          await this.maybePurge();
        } catch (err) {
          if (!this.running) return;
          this.log.error({ err }, 'webhook delivery loop error');
        }
      }
      // Busy: wait for requests to finish. Claimed less than there was room for: nothing more is due; poll (or be woken).
      if (this.running && (!worthClaiming || claimed < free)) await this.waker.sleep(!worthClaiming ? 60_000 : this.pollMs);
    }
  }

  /**
   * Due, unclaimed (or abandoned) deliveries of enabled endpoints whose earlier deliveries of the same call to the
   * same endpoint are all settled. The claim counts as an attempt, so a delivery that kills its instance every
   * time still reaches the end of its retry window.
   */
  private async claim(limit: number): Promise<Claimed[]> {
    const now = this.now();
    return rowsOf<Claimed>(
      await this.db.execute(sql`
        with c as (
          update webhook_deliveries d
          set locked_by = ${this.workerId}, locked_at = ${ts(now)}, attempts = d.attempts + 1
          where d.id in (
            select x.id from webhook_deliveries x
            join webhook_endpoints w on w.id = x.endpoint_id and w.enabled
            where x.status = 'pending' and x.next_attempt_at <= ${ts(now)}
              and (x.locked_at is null or x.locked_at < ${ts(now - this.opts.leaseMs)})
              and (x.call_id is null or not exists (
                select 1 from webhook_deliveries p
                where p.endpoint_id = x.endpoint_id and p.call_id = x.call_id and p.status = 'pending' and p.seq < x.seq))
            order by x.next_attempt_at, x.seq
            limit ${limit}
            for update of x skip locked)
          returning d.id, d.tenant_id, d.endpoint_id, d.event_id, d.attempts, d.retry_until)
        select c.*, e.type, e.created_at, e.data, w.url, w.secret, w.previous_secret, w.previous_secret_expires_at
        from c
        join webhook_events e on e.id = c.event_id
        join webhook_endpoints w on w.id = c.endpoint_id`),
    );
  }

  private async deliver(row: Claimed): Promise<void> {
    const event = {
      id: row.event_id,
      type: row.type,
      created_at: new Date(row.created_at).toISOString(),
      tenant_id: row.tenant_id,
      data: typeof row.data === 'string' ? (JSON.parse(row.data) as unknown) : row.data,
    };
    const body = JSON.stringify(event);
    const secrets = this.secrets.secretsOf(
      {
        secret: row.secret,
        previousSecret: row.previous_secret,
        previousSecretExpiresAt: row.previous_secret_expires_at ? new Date(row.previous_secret_expires_at) : null,
      },
      this.now(),
    );
    if (secrets.length === 0) {
      // Sealed with another SECRET_KEY: nothing we send could be verified. Logged as an attempt and retried.
      return this.settle(row, { ok: false, statusCode: null, latencyMs: 0, body: null, error: 'signing secret unreadable' });
    }
    // The signature's timestamp is the wall clock's: the receiver checks it against its own.
    const headers = webhookHeaders(secrets, row.event_id, Math.floor(Date.now() / 1000), body);
    const outcome = await this.send(row.url, body, headers);
    if (this.abort.signal.aborted && !outcome.ok) return this.release(row);
    await this.settle(row, outcome);
  }

  private async send(url: string, body: string, headers: Record<string, string>): Promise<Outcome> {
    const started = performance.now();
    const signal = AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.opts.timeoutMs ?? 10_000)]);
    const latency = () => Math.round(performance.now() - started);
    try {
      const res = await this.fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'voice-agent-webhooks/1', ...headers },
        body,
        signal,
      });
      const text = await firstBytes(res, RESPONSE_LOG_BYTES, signal).catch(() => null);
      const ok = res.status >= 200 && res.status < 300;
      return {
        ok,
        statusCode: res.status,
        latencyMs: latency(),
        body: text,
        error: ok ? null : res.status >= 300 && res.status < 400 ? 'redirects are not followed' : null,
        retryAfterMs: retryAfterMs(res.headers.get('retry-after'), this.now()),
      };
    } catch (err) {
      const refused = refusedByGuard(err);
      const error = refused
        ? `refused: ${refused.message}`
        : signal.aborted && !this.abort.signal.aborted
          ? `timed out after ${this.opts.timeoutMs ?? 10_000} ms`
          : `${(err as Error).message ?? String(err)}${(err as { code?: string }).code ? ` (${(err as { code?: string }).code})` : ''}`;
      return { ok: false, statusCode: null, latencyMs: latency(), body: null, error: error.slice(0, 500) };
    }
  }

  /** The attempt logged, the delivery settled or rescheduled, the endpoint's failure run updated: one statement. */
  private async settle(row: Claimed, o: Outcome): Promise<void> {
    const now = this.now();
    this.opts.onAttempt?.(o.ok ? 'delivered' : 'failed', Math.max(0, now - new Date(row.created_at).getTime()) / 1000);
    // Nothing is logged for a delivery deleted meanwhile (its endpoint was).
    const attempt = sql`insert into webhook_attempts (delivery_id, attempted_at, status_code, latency_ms, response_body, error)
      select id, ${ts(now)}, ${o.statusCode}::int, ${o.latencyMs}::int, ${o.body}::text, ${o.error}::text
      from webhook_deliveries where id = ${row.id}`;
    if (o.ok) {
      await this.db.execute(sql`
        with a as (${attempt}),
        ep as (update webhook_endpoints set failing_since = null where id = ${row.endpoint_id} and failing_since is not null)
        update webhook_deliveries set status = 'delivered', delivered_at = ${ts(now)}, last_status_code = ${o.statusCode},
          last_error = null, locked_by = null, locked_at = null, updated_at = ${ts(now)}
        where id = ${row.id} and locked_by = ${this.workerId}`);
      return;
    }
    const retryUntil = new Date(row.retry_until).getTime();
    const giveUp = now >= retryUntil;
    // Retry-After: 0 (or a date passed) would retry at once, forever: a second at least.
    const delay = o.retryAfterMs !== undefined ? Math.max(1000, o.retryAfterMs) : this.backoff(row.attempts);
    const next = Math.min(retryUntil, now + delay);
    const [ep] = rowsOf<{ failing_since: string | Date; enabled: boolean }>(
      await this.db.execute(sql`
        with a as (${attempt}),
        d as (
          update webhook_deliveries set status = ${giveUp ? 'failed' : 'pending'}, next_attempt_at = ${ts(next)},
            last_status_code = ${o.statusCode}, last_error = ${o.error}, locked_by = null, locked_at = null, updated_at = ${ts(now)}
          where id = ${row.id} and locked_by = ${this.workerId})
        update webhook_endpoints set failing_since = coalesce(failing_since, ${ts(now)})
        where id = ${row.endpoint_id}
        returning failing_since, enabled`),
    );
    if (ep?.enabled && now - new Date(ep.failing_since).getTime() >= (this.opts.disableAfterMs ?? 3 * 86_400_000)) {
      await this.disable(row, now);
    }
  }

  /** The endpoint off, with why; `endpoint.disabled` to the tenant's other enabled endpoints, in one transaction. */
  private async disable(row: Claimed, now: number): Promise<void> {
    await this.db.transaction(async (tx) => {
      const days = Math.round((this.opts.disableAfterMs ?? 3 * 86_400_000) / 86_400_000);
      const changed = rowsOf<{ id: string }>(
        await tx.execute(sql`
          update webhook_endpoints set enabled = false, updated_at = ${ts(now)},
            disabled_reason = ${`every delivery failed for ${days} days (last: ${new Date(now).toISOString()})`}
          where id = ${row.endpoint_id} and enabled returning id`),
      );
      if (changed.length === 0) return;
      // Parked until the endpoint is enabled again (services/webhooks.ts), so claims do not scan past them.
      await tx.execute(
        sql`update webhook_deliveries set next_attempt_at = 'infinity' where endpoint_id = ${row.endpoint_id} and status = 'pending'`,
      );
      const others = rowsOf<{ id: string }>(
        await tx.execute(sql`select id from webhook_endpoints where tenant_id = ${row.tenant_id} and enabled and id <> ${row.endpoint_id}`),
      ).map((r) => r.id);
      await publishEvent(tx, row.tenant_id, 'endpoint.disabled', { endpoint_id: row.endpoint_id, url: row.url }, { endpointIds: others });
    });
    this.log.warn({ tenantId: row.tenant_id, endpointId: row.endpoint_id }, 'webhook endpoint disabled after failing for days');
  }

  /** Shutdown: the claim handed back at once, the interrupted attempt not counted. */
  private async release(row: Claimed): Promise<void> {
    await this.db
      .execute(
        sql`update webhook_deliveries set locked_by = null, locked_at = null, attempts = greatest(attempts - 1, 0)
            where id = ${row.id} and locked_by = ${this.workerId}`,
      )
      .catch((err: unknown) => this.log.warn({ err }, 'could not release a webhook delivery at shutdown'));
  }

  /** Exponential from backoffBaseMs, capped, with jitter in [half, full] so endpoints that failed together spread out. */
  private backoff(attempts: number): number {
    const base = this.opts.backoffBaseMs ?? 5_000;
    const full = Math.min(this.opts.backoffMaxMs ?? 3600_000, base * 2 ** Math.min(30, Math.max(0, attempts - 1)));
    return Math.round(full / 2 + (this.random() * full) / 2);
  }

  private async maybePurge(): Promise<void> {
    const now = this.now();
    if (now - this.lastPurge < PURGE_EVERY_MS) return;
    this.lastPurge = now;
    await this.purge();
  }

  /**
   * Retention: finished deliveries older than retentionMs go with their attempts, then events older than that
   * no delivery refers to any more. In batches, so no statement holds the embedded database long.
   */
  async purge(): Promise<number> {
    const cutoff = ts(this.now() - this.opts.retentionMs);
    let total = 0;
    for (;;) {
      const n = rowsOf<{ id: string }>(
        await this.db.execute(sql`
          delete from webhook_deliveries where id in (
            select id from webhook_deliveries where status <> 'pending' and updated_at < ${cutoff} limit ${PURGE_BATCH})
          returning id`),
      ).length;
      total += n;
      if (n < PURGE_BATCH) break;
    }
    for (;;) {
      const n = rowsOf<{ id: string }>(
        await this.db.execute(sql`
          delete from webhook_events where id in (
            select e.id from webhook_events e
            where e.created_at < ${cutoff}
              and not exists (select 1 from webhook_deliveries d where d.event_id = e.id)
            limit ${PURGE_BATCH})
          returning id`),
      ).length;
      if (n < PURGE_BATCH) break;
    }
    return total;
  }
}

/** The first `max` bytes of the answer as text; the rest is not read. */
async function firstBytes(res: Response, max: number, signal: AbortSignal): Promise<string | null> {
  if (!res.body) return null;
  const reader = res.body.getReader();
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max && !signal.aborted) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.byteLength;
    }
  } finally {
    void reader.cancel().catch(() => {});
  }
  const buf = Buffer.concat(parts).subarray(0, max);
  // A cut inside a multi-byte character ends in U+FFFD; drop it.
  return buf.toString('utf8').replace(/\uFFFD+$/, '');
}

/** Retry-After as seconds or an HTTP date, in ms from now; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (!header) return undefined;
  const s = header.trim();
  if (/^\d+$/.test(s)) return Number(s) * 1000;
  const at = Date.parse(s);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
