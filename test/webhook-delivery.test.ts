// The webhook delivery worker in virtual time (its `now` is the test's): a receiver answering 500s then recovering
// gets every event, in order per call; Retry-After is honoured to the second; the backoff grows with jitter and
// gives up after 24 h; an endpoint failing for 3 days is disabled and the tenant's other endpoint told; a claim
// abandoned mid-request (a crashed instance) is taken over after the lease, with the same webhook-id; the guard
// refuses a private address at delivery; a hung receiver times out; the log keeps 1 KB; retention purges. An idle
// worker is woken by the NOTIFY its delivery's transaction sends at commit, not by its poll.
import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { webhookAttempts, webhookDeliveries, webhookEndpoints, webhookEvents } from '../src/db/schema.js';
import { OutboundGuard } from '../src/lib/outbound.js';
import { publishEvent, WEBHOOK_CHANNEL } from '../src/services/outbox.js';
import { type WebhookDeliveryOptions, WebhookDeliveryWorker } from '../src/services/webhook-delivery.js';
import { WebhookReceiver } from './fakes/webhook-receiver.js';
import { signup, useTestApp, waitFor, WIRE_PASS } from './helpers.js';

// The app's own worker is off: each test drives its own, in its own virtual time.
const t = useTestApp({ WEBHOOK_DELIVERY_CONCURRENCY: '0' });
const receiver = new WebhookReceiver();
beforeAll(() => receiver.start());
afterAll(() => receiver.stop());
afterEach(async () => {
  // Another test's pending deliveries must not come due in the next test's virtual time.
  await t.deps.database.db.delete(webhookEndpoints);
});

const HOUR = 3600_000;
const DAY = 24 * HOUR;
const openGuard = new OutboundGuard({ allowPrivateNetworks: true, allowHosts: [] });

function virtualWorker(opts: Partial<WebhookDeliveryOptions> & { fetch?: typeof openGuard.fetch } = {}) {
  // Starts a little after the real clock: rows published just now (next_attempt_at = the database's now()) are due.
  const clock = { now: Date.now() + 1000 };
  const worker = new WebhookDeliveryWorker(t.deps.database.db, t.deps.webhooks, opts.fetch ?? openGuard.fetch, t.deps.log, {
    concurrency: 8,
    leaseMs: 60_000,
    retentionMs: 7 * DAY,
    now: () => clock.now,
    ...opts,
  });
  return { worker, clock };
}

async function endpoint(tenantId: string, path: string, events: string[] = ['*']) {
  const { endpoint: e, secret } = await t.deps.webhooks.create(tenantId, { url: receiver.url(path), events });
  receiver.secrets.set(path, [secret]);
  return e;
}

const deliveryRows = (endpointId: string) =>
  t.deps.database.db.select().from(webhookDeliveries).where(eq(webhookDeliveries.endpointId, endpointId)).orderBy(webhookDeliveries.seq);

describe('webhook delivery worker', () => {
  it('a receiver answering 500s then recovering gets every event, each call’s in order, all signed', async () => {
    const { tenant } = await signup(t.app);
    const ep = await endpoint(tenant.id, '/flaky');
    const [a, b] = [randomUUID(), randomUUID()];
    const db = t.deps.database.db;
    const published = [
      await publishEvent(
        db,
        tenant.id,
        'call.started',
        { call_id: a, direction: 'inbound', status: 'in_progress', from: '+1555', to: '+1666' },
        { callId: a },
      ),
      await publishEvent(
        db,
        tenant.id,
        'call.started',
        { call_id: b, direction: 'web', status: 'in_progress', from: null, to: null },
        { callId: b },
      ),
      await publishEvent(db, tenant.id, 'transfer.started', { call_id: a, to: '+1777', reason: 'test' }, { callId: a }),
      await publishEvent(db, tenant.id, 'document.ready', {
        document_id: randomUUID(),
        name: 'FAQ',
        chunks: 3,
        version: 1,
        filename: null,
        embedding_model: 'local',
      }),
      await publishEvent(db, tenant.id, 'transfer.failed', { call_id: a, to: '+1777', error: 'busy' }, { callId: a }),
      await publishEvent(db, tenant.id, 'recording.ready', { call_id: b, duration_ms: 1200 }, { callId: b }),
    ];
    // The first six requests fail, whichever they are.
    receiver.answer = (path, n) => (path === '/flaky' && n < 6 ? { status: 500, body: 'down for maintenance' } : { status: 200 });

    const { worker, clock } = virtualWorker();
    for (let i = 0; i < 48 && receiver.delivered('/flaky').length < published.length; i++) {
      await worker.drain();
      clock.now += HOUR / 4;
    }

    const got = receiver.at('/flaky');
    expect(got.every((r) => r.verifiedBy.length === 1)).toBe(true);
    expect(got.filter((r) => r.status === 500)).toHaveLength(6);
    // Every event delivered exactly once, webhook-id = the event's id.
    expect(
      receiver
        .delivered('/flaky')
        .map((r) => r.id)
        .sort(),
    ).toEqual([...published].sort());
    for (const r of got) expect(r.event.id).toBe(r.id);
    // In order per call: no request for a call's event before every earlier event of that call was delivered.
    const order = new Map(published.map((id, i) => [id, i]));
    const done = new Set<string>();
    for (const r of got) {
      const call = r.event.data.call_id as string | undefined;
      if (call) {
        const earlier = got.filter((o) => o.event.data.call_id === call && order.get(o.id)! < order.get(r.id)!).map((o) => o.id);
        for (const e of earlier) expect(done.has(e), `${r.event.type} of ${call} sent before ${e} was delivered`).toBe(true);
      }
      if (r.status === 200) done.add(r.id);
    }
    const perCall = (call: string) =>
      receiver
        .delivered('/flaky')
        .filter((r) => r.event.data.call_id === call)
        .map((r) => r.event.type);
    expect(perCall(a)).toEqual(['call.started', 'transfer.started', 'transfer.failed']);
    expect(perCall(b)).toEqual(['call.started', 'recording.ready']);

    // The log: every attempt with its status, latency and the start of the answer.
    const log = await t.deps.webhooks.deliveries(tenant.id, ep.id, { limit: 50, offset: 0 });
    expect(log.total).toBe(published.length);
    expect(log.items.every((d) => d.status === 'delivered')).toBe(true);
    const attempts = log.items.flatMap((d) => d.attempt_log);
    expect(attempts).toHaveLength(got.length);
    expect(attempts.filter((x) => x.status_code === 500).every((x) => x.response_body === 'down for maintenance')).toBe(true);
    expect(attempts.every((x) => x.latency_ms >= 0 && x.error === null)).toBe(true);
  });

  it('honours Retry-After: not a second earlier', async () => {
    const { tenant } = await signup(t.app);
    const ep = await endpoint(tenant.id, '/busy');
    receiver.answer = (path, n) => (path === '/busy' && n === 0 ? { status: 429, headers: { 'retry-after': '120' } } : { status: 200 });
    await publishEvent(t.deps.database.db, tenant.id, 'document.ready', {
      document_id: randomUUID(),
      name: 'x',
      chunks: 1,
      version: 1,
      filename: null,
      embedding_model: 'local',
    });
    const { worker, clock } = virtualWorker();
    const start = clock.now;
    expect(await worker.drain()).toBe(1);
    const [row] = await deliveryRows(ep.id);
    expect(row!.nextAttemptAt.getTime()).toBe(start + 120_000);
    expect(row!.lastStatusCode).toBe(429);
    clock.now = start + 119_000;
    expect(await worker.drain()).toBe(0);
    clock.now = start + 120_000;
    expect(await worker.drain()).toBe(1);
    expect(receiver.delivered('/busy')).toHaveLength(1);
  });

  it('backs off exponentially with jitter, capped at an hour, and gives up after 24 h', async () => {
    const { tenant } = await signup(t.app);
    const ep = await endpoint(tenant.id, '/down');
    receiver.answer = (path) => (path === '/down' ? { status: 503 } : { status: 200 });
    await publishEvent(t.deps.database.db, tenant.id, 'document.ready', {
      document_id: randomUUID(),
      name: 'x',
      chunks: 1,
      version: 1,
      filename: null,
      embedding_model: 'local',
    });
    const { worker, clock } = virtualWorker();
    const [first] = await deliveryRows(ep.id);
    const retryUntil = first!.retryUntil.getTime();
    let attempts = 0;
    for (;;) {
      expect(await worker.drain()).toBe(1);
      attempts++;
      const [row] = await deliveryRows(ep.id);
      if (row!.status === 'failed') break;
      const full = Math.min(HOUR, 5000 * 2 ** (attempts - 1));
      const delay = row!.nextAttemptAt.getTime() - clock.now;
      if (row!.nextAttemptAt.getTime() < retryUntil) {
        expect(delay).toBeGreaterThanOrEqual(full / 2);
        expect(delay).toBeLessThanOrEqual(full);
      }
      clock.now = row!.nextAttemptAt.getTime();
      expect(attempts).toBeLessThan(100);
    }
    expect(clock.now).toBe(retryUntil);
    expect(attempts).toBeGreaterThan(20);
    expect(receiver.at('/down')).toHaveLength(attempts);
    // Failed for good: nothing more is sent.
    clock.now += DAY;
    expect(await worker.drain()).toBe(0);
  });

  it('an endpoint failing for 3 days is disabled, flagged, and the tenant’s other endpoint told', async () => {
    const { tenant } = await signup(t.app);
    const dead = await endpoint(tenant.id, '/dead');
    await endpoint(tenant.id, '/alive', ['document.ready']);
    receiver.answer = (path) => (path === '/dead' ? { status: 500 } : { status: 200 });
    const { worker, clock } = virtualWorker();
    const start = clock.now;
    let disabledAt: number | undefined;
    for (let h = 0; h < 4 * 24 && disabledAt === undefined; h++) {
      if (h % 6 === 0)
        await publishEvent(t.deps.database.db, tenant.id, 'document.ready', {
          document_id: randomUUID(),
          name: `d${h}`,
          chunks: 1,
          version: 1,
          filename: null,
          embedding_model: 'local',
        });
      await worker.drain();
      const ep = await t.deps.webhooks.get(tenant.id, dead.id);
      if (!ep.enabled) disabledAt = clock.now;
      clock.now += HOUR;
    }
    expect(disabledAt).toBeDefined();
    expect(disabledAt! - start).toBeGreaterThanOrEqual(3 * DAY);
    expect(disabledAt! - start).toBeLessThan(3 * DAY + 2 * HOUR);
    const flagged = await t.deps.webhooks.get(tenant.id, dead.id);
    expect(flagged).toMatchObject({ enabled: false, disabledReason: expect.stringContaining('3 days') });
    expect(flagged.failingSince!.getTime()).toBe(start);

    // The other endpoint hears it (subscribed or not), the dead one does not.
    await worker.drain();
    const notice = receiver.delivered('/alive').filter((r) => r.event.type === 'endpoint.disabled');
    expect(notice).toHaveLength(1);
    expect(notice[0]!.event.data).toEqual({ endpoint_id: dead.id, url: receiver.url('/dead') });
    expect(notice[0]!.verifiedBy).toHaveLength(1);
    expect(receiver.at('/dead').some((r) => r.event.type === 'endpoint.disabled')).toBe(false);

    // Disabled: nothing more is sent to it; re-enabled: the flag clears and deliveries go out again.
    const before = receiver.at('/dead').length;
    clock.now += 2 * HOUR;
    await worker.drain();
    expect(receiver.at('/dead')).toHaveLength(before);
    receiver.answer = () => ({ status: 200 });
    const enabled = await t.deps.webhooks.update(tenant.id, dead.id, { enabled: true });
    expect(enabled).toMatchObject({ enabled: true, disabledReason: null, failingSince: null });
    await publishEvent(t.deps.database.db, tenant.id, 'document.ready', {
      document_id: randomUUID(),
      name: 'after',
      chunks: 1,
      version: 1,
      filename: null,
      embedding_model: 'local',
    });
    await worker.drain();
    expect(receiver.delivered('/dead').length).toBeGreaterThan(0);
  });

  it('a claim abandoned mid-request (its instance died) is taken over after the lease, same webhook-id', async () => {
    const { tenant } = await signup(t.app);
    await endpoint(tenant.id, '/crash');
    const id = await publishEvent(t.deps.database.db, tenant.id, 'document.ready', {
      document_id: randomUUID(),
      name: 'x',
      chunks: 1,
      version: 1,
      filename: null,
      embedding_model: 'local',
    });
    receiver.answer = () => ({ status: 200 });
    // The first instance sends the request and never hears back (it is gone).
    let sent!: () => void;
    const wasSent = new Promise<void>((r) => (sent = r));
    const dying = virtualWorker({
      fetch: async (url, init) => {
        await openGuard.fetch(url, init);
        sent();
        return new Promise<Response>(() => {});
      },
    });
    void dying.worker.runOnce();
    await wasSent;
    const other = virtualWorker();
    other.clock.now = dying.clock.now + 30_000;
    expect(await other.worker.drain()).toBe(0);
    other.clock.now = dying.clock.now + 60_001;
    expect(await other.worker.drain()).toBe(1);
    const got = receiver.at('/crash');
    expect(got.map((r) => r.id)).toEqual([id, id]);
    expect(got.every((r) => r.verifiedBy.length === 1)).toBe(true);
  });

  it('refuses a private address at delivery time when the policy does (checked after DNS)', async () => {
    const { tenant } = await signup(t.app);
    const ep = await endpoint(tenant.id, '/private');
    await publishEvent(t.deps.database.db, tenant.id, 'document.ready', {
      document_id: randomUUID(),
      name: 'x',
      chunks: 1,
      version: 1,
      filename: null,
      embedding_model: 'local',
    });
    const strict = new OutboundGuard({ allowPrivateNetworks: false, allowHosts: [] });
    const { worker } = virtualWorker({ fetch: strict.fetch });
    await worker.drain();
    expect(receiver.at('/private')).toHaveLength(0);
    const log = await t.deps.webhooks.deliveries(tenant.id, ep.id, { limit: 10, offset: 0 });
    expect(log.items[0]!.attempt_log[0]!.error).toMatch(/refused: 127\.0\.0\.1 resolves to a private network address/);
  });

  it('a hung receiver times out; the log keeps the first 1 KB of an answer', async () => {
    const { tenant } = await signup(t.app);
    const ep = await endpoint(tenant.id, '/slow');
    const big = await endpoint(tenant.id, '/big');
    receiver.answer = (path) => (path === '/slow' ? { status: 200, hang: true } : { status: 500, body: 'é'.repeat(3000) });
    await publishEvent(t.deps.database.db, tenant.id, 'document.ready', {
      document_id: randomUUID(),
      name: 'x',
      chunks: 1,
      version: 1,
      filename: null,
      embedding_model: 'local',
    });
    const { worker } = virtualWorker({ timeoutMs: 200 });
    await worker.drain();
    const slow = await t.deps.webhooks.deliveries(tenant.id, ep.id, { limit: 10, offset: 0 });
    expect(slow.items[0]).toMatchObject({ status: 'pending', last_status_code: null });
    expect(slow.items[0]!.attempt_log[0]!.error).toBe('timed out after 200 ms');
    const logged = (await t.deps.webhooks.deliveries(tenant.id, big.id, { limit: 10, offset: 0 })).items[0]!.attempt_log[0]!;
    expect(logged.status_code).toBe(500);
    expect(Buffer.byteLength(logged.response_body!)).toBeLessThanOrEqual(1024);
    expect(logged.response_body).toBe('é'.repeat(512));
  });

  it('retention: finished deliveries (and their attempts, then orphaned events) go after the configured time', async () => {
    const { tenant } = await signup(t.app);
    const ep = await endpoint(tenant.id, '/kept');
    receiver.answer = () => ({ status: 200 });
    const id = await publishEvent(t.deps.database.db, tenant.id, 'document.ready', {
      document_id: randomUUID(),
      name: 'x',
      chunks: 1,
      version: 1,
      filename: null,
      embedding_model: 'local',
    });
    const { worker, clock } = virtualWorker({ retentionMs: 2 * DAY });
    await worker.drain();
    const [row] = await deliveryRows(ep.id);
    clock.now += DAY;
    await worker.purge();
    expect(await deliveryRows(ep.id)).toHaveLength(1);
    clock.now += 2 * DAY;
    await worker.purge();
    expect(await deliveryRows(ep.id)).toHaveLength(0);
    const db = t.deps.database.db;
    expect(await db.select().from(webhookAttempts).where(eq(webhookAttempts.deliveryId, row!.id))).toHaveLength(0);
    expect(await db.select().from(webhookEvents).where(eq(webhookEvents.id, id))).toHaveLength(0);
  });

  // The wire pass's server (pglite-socket) hands a notification to the connection that committed it, not to the
  // listening one; the service's own (db/pglite-server.ts) routes it: test/embedded-db-thread.test.ts.
  it.skipIf(WIRE_PASS)('an idle worker is woken by the NOTIFY of a committed delivery, not by its poll (an hour here)', async () => {
    const { tenant } = await signup(t.app);
    await endpoint(tenant.id, '/prompt');
    const worker = new WebhookDeliveryWorker(t.deps.database.db, t.deps.webhooks, openGuard.fetch, t.deps.log, {
      concurrency: 2,
      leaseMs: 60_000,
      retentionMs: DAY,
      pollMs: HOUR,
      listen: (onNotify) => t.deps.database.listen(WEBHOOK_CHANNEL, onNotify),
    });
    const publish = (n: number) =>
      t.deps.database.db.transaction((tx) =>
        publishEvent(tx, tenant.id, 'document.ready', {
          document_id: randomUUID(),
          name: `doc ${n}`,
          chunks: 1,
          version: 1,
          filename: null,
          embedding_model: 'local',
        }),
      );
    await worker.start();
    try {
      const first = await publish(1);
      await waitFor('the first delivery', async () => (receiver.delivered('/prompt').some((r) => r.id === first) ? true : undefined));
      // The worker looked again after it and found nothing: it sleeps its hour unless told.
      await new Promise((r) => setTimeout(r, 300));
      const second = await publish(2);
      await waitFor('the second delivery', async () => (receiver.delivered('/prompt').some((r) => r.id === second) ? true : undefined));
    } finally {
      await worker.stop();
    }
  });
});
