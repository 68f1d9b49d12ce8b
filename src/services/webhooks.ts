// A tenant's webhook endpoints (URL, subscribed events, signing secret shown once and rotatable with a 24 h
// overlap), their delivery log, replays and the test ping. The sending is services/webhook-delivery.ts's; this file
// only writes the rows it reads. Every function takes tenantId first: another tenant's endpoint is not found.
import { and, asc, count, desc, eq, gte, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { rowsOf } from '../db/client.js';
import { webhookDeliveries, webhookEndpoints } from '../db/schema.js';
import { AppError, notFound } from '../lib/errors.js';
import { type OutboundGuard, refusedByGuard } from '../lib/outbound.js';
import { newWebhookSecret } from '../lib/webhook-signature.js';
import { publishEvent } from './outbox.js';
import type { SecretBox } from './secret-box.js';

/** How long the previous secret keeps signing after a rotation. */
export const WEBHOOK_ROTATION_OVERLAP_MS = 24 * 3600_000;
/** A replay by time range covers at most this long, and requeues at most REPLAY_MAX_DELIVERIES deliveries. */
export const REPLAY_MAX_RANGE_MS = 31 * 24 * 3600_000;
export const REPLAY_MAX_DELIVERIES = 10_000;
/** The delivery log shows at most this many attempts per delivery (the newest). */
export const LOG_ATTEMPTS_PER_DELIVERY = 20;

export type WebhookEndpoint = typeof webhookEndpoints.$inferSelect;

export interface EndpointInput {
  url: string;
  events: string[];
  description?: string | null;
  enabled?: boolean;
}

export interface DeliveryLogEntry {
  id: string;
  event_id: string;
  event_type: string;
  call_id: string | null;
  event_created_at: string;
  status: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_attempt_at: string | null;
  delivered_at: string | null;
  last_status_code: number | null;
  attempt_log: {
    attempted_at: string;
    status_code: number | null;
    latency_ms: number;
    response_body: string | null;
    error: string | null;
  }[];
}

export class WebhookService {
  constructor(
    private readonly db: Db,
    private readonly box: SecretBox,
    private readonly guard: OutboundGuard,
    private readonly opts: { maxEndpointsPerTenant: number; onQueued?: () => void },
  ) {}

  /** A new endpoint and its secret, in clear this once. */
  async create(tenantId: string, input: EndpointInput): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    await this.checkUrl(input.url);
    const secret = newWebhookSecret();
    const endpoint = await this.db.transaction(async (tx) => {
      // Serialises creations of one tenant, so two at once cannot both pass the count.
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`webhooks:${tenantId}`}))`);
      const [{ n }] = (await tx.select({ n: count() }).from(webhookEndpoints).where(eq(webhookEndpoints.tenantId, tenantId))) as [
        { n: number },
      ];
      if (n >= this.opts.maxEndpointsPerTenant) {
        throw new AppError('webhook_limit_reached', `A tenant may have at most ${this.opts.maxEndpointsPerTenant} webhook endpoints`);
      }
      const [row] = await tx
        .insert(webhookEndpoints)
        .values({
          tenantId,
          url: input.url,
          events: input.events,
          description: input.description ?? null,
          enabled: input.enabled ?? true,
          secret: this.box.seal(secret),
        })
        .returning();
      return row!;
    });
    return { endpoint, secret };
  }

  list(tenantId: string): Promise<WebhookEndpoint[]> {
    return this.db.select().from(webhookEndpoints).where(eq(webhookEndpoints.tenantId, tenantId)).orderBy(asc(webhookEndpoints.createdAt));
  }

  async get(tenantId: string, id: string): Promise<WebhookEndpoint> {
    const [row] = await this.db
      .select()
      .from(webhookEndpoints)
      .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)));
    if (!row) throw notFound('Webhook endpoint');
    return row;
  }

  /** Deliveries still to be made, every tenant's (the operator's webhook backlog in /metrics). */
  async backlog(): Promise<number> {
    const [row] = await this.db.select({ n: count() }).from(webhookDeliveries).where(eq(webhookDeliveries.status, 'pending'));
    return row?.n ?? 0;
  }

  /** Enabling clears the disabled flag and the failure run: its pending deliveries resume. */
  async update(tenantId: string, id: string, patch: Partial<EndpointInput>): Promise<WebhookEndpoint> {
    if (patch.url !== undefined) await this.checkUrl(patch.url);
    const [row] = await this.db
      .update(webhookEndpoints)
      .set({
        ...(patch.url !== undefined && { url: patch.url }),
        ...(patch.events !== undefined && { events: patch.events }),
        ...(patch.description !== undefined && { description: patch.description }),
        ...(patch.enabled !== undefined && { enabled: patch.enabled }),
        ...(patch.enabled === true && { disabledReason: null, failingSince: null }),
        ...(patch.enabled === false && { disabledReason: null }),
      })
      .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)))
      .returning();
    if (!row) throw notFound('Webhook endpoint');
    if (patch.enabled !== undefined) {
      // A disabled endpoint's pending deliveries are parked (due at infinity) so that claims do not scan past them;
      // enabling makes them due again.
      await this.db
        .update(webhookDeliveries)
        .set({ nextAttemptAt: patch.enabled ? sql`now()` : sql`'infinity'::timestamptz` })
        .where(
          and(
            eq(webhookDeliveries.endpointId, id),
            eq(webhookDeliveries.status, 'pending'),
            patch.enabled ? sql`${webhookDeliveries.nextAttemptAt} = 'infinity'::timestamptz` : undefined,
          ),
        );
    }
    if (patch.enabled) this.opts.onQueued?.();
    return row;
  }

  /** The endpoint, its deliveries and their log. */
  async remove(tenantId: string, id: string): Promise<void> {
    const rows = await this.db
      .delete(webhookEndpoints)
      .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)))
      .returning({ id: webhookEndpoints.id });
    if (rows.length === 0) throw notFound('Webhook endpoint');
  }

  /** A new secret, in clear this once; the one it replaces keeps signing for WEBHOOK_ROTATION_OVERLAP_MS. */
  async rotateSecret(tenantId: string, id: string): Promise<{ endpoint: WebhookEndpoint; secret: string }> {
    const secret = newWebhookSecret();
    const [endpoint] = await this.db
      .update(webhookEndpoints)
      .set({
        secret: this.box.seal(secret),
        previousSecret: sql`${webhookEndpoints.secret}`,
        previousSecretExpiresAt: sql`now() + ${`${WEBHOOK_ROTATION_OVERLAP_MS} milliseconds`}::interval`,
      })
      .where(and(eq(webhookEndpoints.tenantId, tenantId), eq(webhookEndpoints.id, id)))
      .returning();
    if (!endpoint) throw notFound('Webhook endpoint');
    return { endpoint, secret };
  }

  /** Queues a `ping` for this endpoint alone; returns the event id. */
  async ping(tenantId: string, id: string): Promise<string> {
    const endpoint = await this.get(tenantId, id);
    if (!endpoint.enabled) throw new AppError('webhook_disabled', 'The endpoint is disabled; enable it first');
    const eventId = await publishEvent(this.db, tenantId, 'ping', { endpoint_id: id }, { endpointIds: [id] });
    this.opts.onQueued?.();
    return eventId;
  }

  /** The endpoint's deliveries, newest first, each with its latest attempts. */
  async deliveries(
    tenantId: string,
    endpointId: string,
    q: { limit: number; offset: number; status?: 'pending' | 'delivered' | 'failed' },
  ): Promise<{ items: DeliveryLogEntry[]; total: number }> {
    await this.get(tenantId, endpointId);
    const where = and(
      eq(webhookDeliveries.tenantId, tenantId),
      eq(webhookDeliveries.endpointId, endpointId),
      q.status ? eq(webhookDeliveries.status, q.status) : undefined,
    );
    const [rows, [total]] = await Promise.all([
      this.db.select().from(webhookDeliveries).where(where).orderBy(desc(webhookDeliveries.seq)).limit(q.limit).offset(q.offset),
      this.db.select({ n: count() }).from(webhookDeliveries).where(where),
    ]);
    const attempts = rows.length
      ? rowsOf<{
          delivery_id: string;
          attempted_at: string | Date;
          status_code: number | null;
          latency_ms: number;
          response_body: string | null;
          error: string | null;
        }>(
          await this.db.execute(sql`
            select delivery_id, attempted_at, status_code, latency_ms, response_body, error from (
              select a.*, row_number() over (partition by a.delivery_id order by a.attempted_at desc) as n
              from webhook_attempts a
              where a.delivery_id in (${sql.join(
                rows.map((r) => sql`${r.id}::uuid`),
                sql`, `,
              )})) x
            where n <= ${LOG_ATTEMPTS_PER_DELIVERY}
            order by attempted_at desc`),
        )
      : [];
    const byDelivery = new Map<string, DeliveryLogEntry['attempt_log']>();
    for (const a of attempts) {
      const list = byDelivery.get(a.delivery_id) ?? [];
      list.push({
        attempted_at: new Date(a.attempted_at).toISOString(),
        status_code: a.status_code,
        latency_ms: a.latency_ms,
        response_body: a.response_body,
        error: a.error,
      });
      byDelivery.set(a.delivery_id, list);
    }
    return {
      total: Number(total?.n ?? 0),
      items: rows.map((r) => ({
        id: r.id,
        event_id: r.eventId,
        event_type: r.eventType,
        call_id: r.callId,
        event_created_at: r.eventCreatedAt.toISOString(),
        status: r.status,
        attempts: r.attempts,
        // Null when settled, or parked while the endpoint is disabled (due at infinity).
        next_attempt_at: r.status === 'pending' && Number.isFinite(r.nextAttemptAt.getTime()) ? r.nextAttemptAt.toISOString() : null,
        delivered_at: r.deliveredAt?.toISOString() ?? null,
        last_status_code: r.lastStatusCode,
        attempt_log: byDelivery.get(r.id) ?? [],
      })),
    };
  }

  /** Sends one delivery again (same event id), with a fresh 24 h of retries. */
  async replayDelivery(tenantId: string, deliveryId: string): Promise<void> {
    const rows = await this.db
      .update(webhookDeliveries)
      .set(this.requeue())
      .where(and(eq(webhookDeliveries.tenantId, tenantId), eq(webhookDeliveries.id, deliveryId)))
      .returning({ id: webhookDeliveries.id });
    if (rows.length === 0) throw notFound('Webhook delivery');
    this.opts.onQueued?.();
  }

  /**
   * Sends again every delivery to this endpoint of events published in [from, to): bounded by
   * REPLAY_MAX_RANGE_MS and, oldest first, REPLAY_MAX_DELIVERIES. Returns how many were queued.
   */
  async replayRange(tenantId: string, endpointId: string, from: Date, to: Date): Promise<number> {
    if (to.getTime() <= from.getTime()) throw new AppError('bad_request', '`to` must be after `from`');
    if (to.getTime() - from.getTime() > REPLAY_MAX_RANGE_MS)
      throw new AppError('bad_request', `A replay covers at most ${REPLAY_MAX_RANGE_MS / 86_400_000} days`);
    await this.get(tenantId, endpointId);
    const ids = this.db
      .select({ id: webhookDeliveries.id })
      .from(webhookDeliveries)
      .where(
        and(
          eq(webhookDeliveries.tenantId, tenantId),
          eq(webhookDeliveries.endpointId, endpointId),
          gte(webhookDeliveries.eventCreatedAt, from),
          lt(webhookDeliveries.eventCreatedAt, to),
        ),
      )
      .orderBy(asc(webhookDeliveries.seq))
      .limit(REPLAY_MAX_DELIVERIES);
    const rows = await this.db
      .update(webhookDeliveries)
      .set(this.requeue())
      .where(inArray(webhookDeliveries.id, ids))
      .returning({ id: webhookDeliveries.id });
    if (rows.length) this.opts.onQueued?.();
    return rows.length;
  }

  /** The secrets to sign with now, current first (the previous one during its overlap). */
  secretsOf(endpoint: Pick<WebhookEndpoint, 'secret' | 'previousSecret' | 'previousSecretExpiresAt'>, nowMs: number): string[] {
    const previous =
      endpoint.previousSecret && endpoint.previousSecretExpiresAt && endpoint.previousSecretExpiresAt.getTime() > nowMs
        ? endpoint.previousSecret
        : undefined;
    return [endpoint.secret, previous].flatMap((s) => (s ? (this.box.open(s) ?? []) : []));
  }

  /** Pending again, due now; a delivery in flight keeps its claim (its answer lands, then this replay sends it again). */
  private requeue() {
    return {
      status: 'pending' as const,
      nextAttemptAt: sql`now()`,
      retryUntil: sql`now() + interval '24 hours'`,
      deliveredAt: null,
    };
  }

  /**
   * Refuses a URL the outbound guard would refuse: an address in a private range, or a name that resolves into
   * one now. Checked again at every delivery (after DNS, at connect time), since a name can change later.
   */
  private async checkUrl(raw: string): Promise<void> {
    const url = new URL(raw);
    const refuse = () =>
      new AppError('url_not_allowed', 'The URL points to a private, loopback or link-local address; webhooks go to public addresses', [
        { field: 'body.url', message: 'resolves to a private network address' },
      ]);
    let lookup;
    try {
      lookup = this.guard.check(url);
    } catch (err) {
      if (refusedByGuard(err)) throw refuse();
      throw err;
    }
    if (!lookup) return;
    const host = url.hostname;
    const refused = await new Promise<boolean>((resolve) =>
      lookup(host, { all: true }, (err) => resolve(Boolean(err && refusedByGuard(err)))),
    );
    // A name that does not resolve yet is accepted: deliveries fail (and are logged) until it does.
    if (refused) throw refuse();
  }
}
