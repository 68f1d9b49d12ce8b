// Publishing a webhook event: one row in the outbox (webhook_events), written with the executor the caller passes,
// so that an event rides in the same transaction as the change that caused it (call ended, document ready, limit
// reached): both are stored or neither. The delivery worker sends what the outbox holds; nothing here does I/O
// beyond that insert. The data is checked against the catalog (lib/webhook-events.ts) before it is stored.
import { randomUUID } from 'node:crypto';
import type { Db } from '../db/client.js';
import { webhookEvents } from '../db/schema.js';
import { type WebhookEventData, type WebhookEventType, webhookEventSchemas } from '../lib/webhook-events.js';

/** The database or a transaction of it (a Drizzle transaction is a Db for every query we make). */
export type Executor = Pick<Db, 'insert' | 'select' | 'update' | 'delete' | 'execute'>;

export const newEventId = () => `evt_${randomUUID().replaceAll('-', '')}`;

/** Stores one event for the tenant's endpoints; returns its id (the receiver's idempotency key). */
export async function publishEvent<T extends WebhookEventType>(
  db: Executor,
  tenantId: string,
  type: T,
  data: WebhookEventData<T>,
  opts: { callId?: string } = {},
): Promise<string> {
  const id = newEventId();
  const parsed = webhookEventSchemas[type].parse(data) as Record<string, unknown>;
  await db.insert(webhookEvents).values({ id, tenantId, type, callId: opts.callId ?? null, data: parsed });
  return id;
}
