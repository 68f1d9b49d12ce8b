// Publishing a webhook event: one row in the outbox (webhook_events) and one delivery row per endpoint that should
// get it, written in one statement with the executor the caller passes, so that an event rides in the same
// transaction as the change that caused it (call ended, document ready, limit reached): all are stored or none.
// An endpoint gets the events published after it exists. The delivery worker (services/webhook-delivery.ts) sends
// what the delivery rows hold, woken by the statement's NOTIFY; nothing here does I/O beyond that statement. The
// data is checked against the catalog (lib/webhook-events.ts) before it is stored.
import { randomUUID } from 'node:crypto';
import { type SQL, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { OPT_IN_EVENT_TYPES, type WebhookEventData, type WebhookEventType, webhookEventSchemas } from '../lib/webhook-events.js';

/** The database or a transaction of it (a Drizzle transaction is a Db for every query we make). */
export type Executor = Pick<Db, 'insert' | 'select' | 'update' | 'delete' | 'execute'>;

/**
 * The LISTEN/NOTIFY channel told of new deliveries (at commit), so idle delivery workers look at once rather than at
 * their next poll (services/webhook-delivery.ts).
 */
export const WEBHOOK_CHANNEL = 'webhook_deliveries';

export const newEventId = () => `evt_${randomUUID().replaceAll('-', '')}`;

export interface PublishOptions {
  /** The call the event is about: events of one call reach each endpoint in order. */
  callId?: string;
  /**
   * Exactly these endpoints (of the tenant, enabled), subscribed or not: `ping` to the endpoint tested,
   * `endpoint.disabled` to the others. Without it: every enabled endpoint subscribed to the type.
   */
  endpointIds?: readonly string[];
}

/** Stores one event for the tenant's endpoints; returns its id (the receiver's idempotency key). */
export async function publishEvent<T extends WebhookEventType>(
  db: Executor,
  tenantId: string,
  type: T,
  data: WebhookEventData<T>,
  opts: PublishOptions = {},
): Promise<string> {
  const { id, ctes } = eventCtes(tenantId, type, data, opts);
  await db.execute(sql`with ${ctes} select pg_notify(${WEBHOOK_CHANNEL}, '')::text as notified where exists (select 1 from d)`);
  return id;
}

/**
 * The statement of publishEvent as two CTEs (`e` the event, `d` its deliveries) for a caller that writes its own
 * change in the same statement, in a CTE before them: one round trip where a transaction takes four. `patch`, a
 * jsonb expression over that CTE, is merged into the data as stored (a value only the database knows, such as the
 * sequence number it gave the row); the data must then be valid without it (checked here with a stand-in).
 */
export function eventCtes<T extends WebhookEventType>(
  tenantId: string,
  type: T,
  data: WebhookEventData<T>,
  opts: PublishOptions = {},
  patch?: { from: SQL; value: SQL },
): { id: string; ctes: SQL } {
  const id = newEventId();
  const parsed = webhookEventSchemas[type].parse(data) as Record<string, unknown>;
  const optIn = (OPT_IN_EVENT_TYPES as readonly string[]).includes(type);
  const who = opts.endpointIds
    ? opts.endpointIds.length
      ? sql`w.id in (${sql.join(
          opts.endpointIds.map((e) => sql`${e}::uuid`),
          sql`, `,
        )})`
      : sql`false`
    : optIn
      ? sql`${type} = any(w.events)`
      : sql`(${type} = any(w.events) or '*' = any(w.events))`;
  const json = sql`${JSON.stringify(parsed)}::jsonb`;
  const values = patch
    ? sql`select ${id}::text, ${tenantId}::uuid, ${type}::text, ${opts.callId ?? null}::uuid, ${json} || ${patch.value} from ${patch.from}`
    : sql`values (${id}, ${tenantId}, ${type}, ${opts.callId ?? null}, ${json})`;
  // The notification is sent when the transaction commits (never for one rolled back), to every instance's worker
  // listening on the channel; an event no endpoint gets wakes nobody.
  const ctes = sql`
    e as (
      insert into webhook_events (id, tenant_id, type, call_id, data)
      ${values}
      returning id, tenant_id, type, call_id, created_at),
    d as (
      insert into webhook_deliveries (tenant_id, endpoint_id, event_id, event_type, call_id, event_created_at, next_attempt_at)
      select e.tenant_id, w.id, e.id, e.type, e.call_id, e.created_at, e.created_at
      from e join webhook_endpoints w on w.tenant_id = e.tenant_id and w.enabled and ${who}
      returning 1)`;
  return { id, ctes };
}
