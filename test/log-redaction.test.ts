// Log lines and error bodies carry no credentials (issue 16, findings 14 and 15): request lines show a media
// websocket's `token` and a recording link's `signature` as [redacted]; a failed query is logged (and shown in a
// development 500) with its SQL and the driver's code and message, never the values bound to it.
import { randomUUID } from 'node:crypto';
import type { FastifyError } from 'fastify';
import { describe, expect, it } from 'vitest';
import { users } from '../src/db/schema.js';
import { redactUrl } from '../src/http/app.js';
import { classify } from '../src/http/errors.js';
import { bearer, signup, useTestApp } from './helpers.js';

// Development: the 500 body shows the error's message, the case to check.
const t = useTestApp({ NODE_ENV: 'development' });

describe('request log lines', () => {
  it("redact a browser call's media token and a recording link's signature", async () => {
    const s = await signup(t.app);
    const web = await t.app.inject({ method: 'POST', url: '/api/v1/calls/web', headers: bearer(s.access_token), payload: {} });
    expect(web.statusCode, web.body).toBe(201);
    const { token } = web.json() as { token: string };
    await t.app.inject({ method: 'GET', url: `/api/v1/calls/web/stream?token=${encodeURIComponent(token)}` });

    const key = `${s.tenant.id}/${randomUUID()}.wav`;
    const link = await t.deps.recordings.signedUrl(key, 60_000);
    const signature = new URL(link, 'http://x').searchParams.get('signature')!;
    await t.app.inject({ method: 'GET', url: link });

    const logs = t.logs.join('\n');
    expect(logs).toContain('/api/v1/calls/web/stream?token=[redacted]');
    expect(logs).toMatch(/\/api\/v1\/recordings\/[^"]+\?expires=\d+&signature=\[redacted\]/);
    expect(logs).not.toContain(token);
    expect(logs).not.toContain(encodeURIComponent(token));
    expect(logs).not.toContain(signature);
  });

  it('redactUrl keeps everything but secret values', () => {
    expect(redactUrl('/a/b')).toBe('/a/b');
    expect(redactUrl('/a?session_id=1&token=abc&x')).toBe('/a?session_id=1&token=[redacted]&x');
    expect(redactUrl('/r/k.wav?expires=12&signature=ff&X-Amz-Signature=1')).toBe(
      '/r/k.wav?expires=12&signature=[redacted]&X-Amz-Signature=[redacted]',
    );
    expect(redactUrl('/a?%74oken=abc')).toBe('/a?%74oken=[redacted]');
  });
});

describe('a failed query', () => {
  const HASH = `$argon2id$v=19$m=19456,t=2,p=1$${randomUUID()}`;

  it('is logged with its SQL and the driver code, without the bound values', async () => {
    const s = await signup(t.app);
    // A duplicate email: the insert's parameters hold a password hash, the driver's detail the email.
    const err = await t.deps.database.db
      .insert(users)
      .values({ tenantId: s.tenant.id, email: s.user.email, passwordHash: HASH })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(String((err as Error).message)).toContain(HASH); // what Drizzle would have logged
    t.deps.log.error({ err }, 'query failed');
    const line = t.logs.findLast((l) => l.includes('query failed'))!;
    expect(line).toContain('insert into \\"users\\"');
    expect(line).toContain('23505');
    expect(line).not.toContain(HASH);
    expect(line).not.toContain(s.user.email);
  });

  it('shows no bound values in a development 500 body, nor in its log line', async () => {
    const secret = `tenant-secret-${randomUUID()}`;
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/signup',
      payload: { email: `nul-${randomUUID()}@example.com`, password: 'correct horse battery', tenant_name: `${secret}\u0000` },
    });
    // Refused before the database (422) once NUL is validated, or a failed query (500): never the value either way.
    expect(res.body).not.toContain(secret);
    expect(t.logs.join('\n')).not.toContain(secret);

    const queryErr = await t.deps.database.db
      .insert(users)
      .values({ tenantId: randomUUID(), email: `x-${randomUUID()}@example.com`, passwordHash: HASH })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const shown = classify(queryErr as FastifyError, true);
    expect(shown.status).toBe(500);
    expect(shown.message).toContain('Failed query: insert into "users"');
    expect(shown.message).not.toContain(HASH);
  });
});
