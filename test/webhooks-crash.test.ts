// The real service as a process on the embedded database, killed (SIGKILL, no shutdown) while webhook requests are
// in flight: after a restart the receiver has every event at least once, a redelivery carries the same webhook-id,
// every signature verifies, and each call's events were first delivered in the order they were published.
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase } from '../src/db/client.js';
import { publishEvent } from '../src/services/outbox.js';
import { WebhookReceiver } from './fakes/webhook-receiver.js';
import { seedDataDir } from './db-snapshot.js';

const main = ['--import', 'tsx', 'src/main.ts'];
const receiver = new WebhookReceiver();
beforeAll(() => receiver.start());
afterAll(() => receiver.stop());

function startService(dataDir: string, port: number): { child: ChildProcess; base: string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, main, {
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { child, base: `http://127.0.0.1:${port}`, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('webhook delivery survives a crash', () => {
  it('SIGKILL with requests in flight, restart: every event at least once, same webhook-id, each call in order', async () => {
    const dataDir = await seedDataDir(mkdtempSync(path.join(tmpdir(), 'va-webhooks-crash-')));
    const port = 21_000 + Math.floor(Math.random() * 1000);
    const up = (base: string) => until('service up', async () => ((await fetch(`${base}/health`)).ok ? true : undefined));
    const json = (token?: string) => ({ 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) });

    // 1. An account and an endpoint; then a graceful stop.
    const first = startService(dataDir, port);
    await up(first.base);
    const signup = await (
      await fetch(`${first.base}/api/v1/auth/signup`, {
        method: 'POST',
        headers: json(),
        body: JSON.stringify({ email: 'hooks@example.com', password: 'correct horse battery', tenant_name: 'Hooks Co' }),
      })
    ).json();
    const created = await (
      await fetch(`${first.base}/api/v1/webhooks`, {
        method: 'POST',
        headers: json(signup.access_token),
        body: JSON.stringify({ url: receiver.url('/crash'), events: ['*'] }),
      })
    ).json();
    receiver.secrets.set('/crash', [created.secret]);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);

    // 2. Events of two calls and two others, in the outbox (as the service's own transactions would leave them).
    const tenantId = signup.tenant.id as string;
    const [a, b] = [randomUUID(), randomUUID()];
    const outbox = await openDatabase({ dataDir: path.join(dataDir, 'pglite'), poolMax: 1 });
    const events: string[] = [];
    try {
      for (const c of [a, b])
        events.push(
          await publishEvent(
            outbox.db,
            tenantId,
            'call.started',
            { call_id: c, direction: 'web', status: 'in_progress', from: null, to: null },
            { callId: c },
          ),
        );
      events.push(
        await publishEvent(outbox.db, tenantId, 'document.ready', {
          document_id: randomUUID(),
          name: 'one',
          chunks: 1,
          version: 1,
          filename: null,
          embedding_model: 'local',
        }),
      );
      for (const c of [a, b])
        events.push(
          await publishEvent(outbox.db, tenantId, 'transfer.started', { call_id: c, to: '+1555', reason: 'test' }, { callId: c }),
        );
      events.push(
        await publishEvent(outbox.db, tenantId, 'document.failed', {
          document_id: randomUUID(),
          name: 'two',
          error: 'x',
          version: 1,
          filename: null,
          attempts: 1,
        }),
      );
      for (const c of [a, b])
        events.push(await publishEvent(outbox.db, tenantId, 'transfer.completed', { call_id: c, to: '+1555' }, { callId: c }));
    } finally {
      await outbox.close();
    }

    // 3. The service delivers; the receiver answers two requests, then holds every other one open: killed then.
    receiver.answer = (_path, n) => (n < 2 ? { status: 200 } : { status: 200, hang: true });
    const second = startService(dataDir, port + 1);
    await up(second.base);
    await until('requests in flight', async () => (receiver.at('/crash').length >= 4 ? true : undefined));
    second.child.kill('SIGKILL');
    await second.exited;
    const beforeCrash = receiver.at('/crash').length;

    // 4. Restarted: everything arrives.
    receiver.answer = () => ({ status: 200 });
    const third = startService(dataDir, port + 2);
    try {
      await up(third.base);
      await until('every event delivered', async () =>
        events.every((id) => receiver.at('/crash').some((r) => r.id === id && r.status === 200 && !r.hung)) ? true : undefined,
      );
    } finally {
      third.child.kill('SIGTERM');
      await third.exited;
    }
    const got = receiver.at('/crash');
    expect(got.every((r) => r.verifiedBy.length === 1)).toBe(true);
    for (const r of got) expect(r.event.id).toBe(r.id);
    // The requests held open at the crash came again with the same id.
    const held = got.slice(2, beforeCrash).map((r) => r.id);
    expect(held.length).toBeGreaterThanOrEqual(2);
    for (const id of held) expect(got.filter((r) => r.id === id).length).toBeGreaterThanOrEqual(2);
    // Each call's events: first delivered (answered) in publication order.
    const answered = got.filter((r) => !r.hung);
    for (const c of [a, b]) {
      const firsts = [...new Set(answered.filter((r) => r.event.data.call_id === c).map((r) => r.event.type))];
      expect(firsts).toEqual(['call.started', 'transfer.started', 'transfer.completed']);
    }
  }, 180_000);
});
