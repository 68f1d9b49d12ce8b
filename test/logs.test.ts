// What the log says at info: one line when a call starts and one when it ends (tenant, call id, channel, duration,
// reason); health probes and /metrics are not logged at info, other requests are.
import { describe, expect, it } from 'vitest';
import { call, signup, useTestApp } from './helpers.js';

const t = useTestApp();
type Line = { level: number; msg?: string; req?: { url?: string }; [k: string]: unknown };
const lines = () => t.logs.map((l) => JSON.parse(l) as Line);

describe('logs', () => {
  it('health probes and /metrics are not logged at info; an API request is', async () => {
    const s = await signup(t.app);
    const from = t.logs.length;
    for (const url of ['/health', '/health/ready', '/metrics']) await t.app.inject({ method: 'GET', url });
    await call(t.app, 'GET', '/api/v1/auth/me', s.access_token);
    const info = lines()
      .slice(from)
      .filter((l) => l.level === 30 && l.req?.url);
    expect(info.map((l) => l.req!.url)).toEqual(['/api/v1/auth/me']);
  });

  it('one info line when a call starts and one when it ends, with tenant, call id, channel, duration and reason', async () => {
    const s = await signup(t.app);
    const web = await call(t.app, 'POST', '/api/v1/calls/web', s.access_token, {});
    expect(web.statusCode).toBe(201);
    const id = web.json().call_id as string;
    await t.deps.calls.end(s.tenant.id, id, 'completed', 'caller hung up', 12_345);
    const about = lines().filter((l) => l.callId === id && l.level === 30);
    expect(about).toEqual([
      expect.objectContaining({ tenantId: s.tenant.id, channel: 'web', msg: 'call started (web, web)' }),
      expect.objectContaining({
        tenantId: s.tenant.id,
        channel: 'web',
        status: 'completed',
        reason: 'caller hung up',
        durationMs: 12_345,
        msg: 'call ended (web): completed, caller hung up, 12.3 s',
      }),
    ]);
  });
});
