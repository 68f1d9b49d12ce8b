// Every operation in the OpenAPI document gets hostile input; none may answer 5xx.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, buildTestApp, type Session, signup, type TestApp } from './helpers.js';

let t: TestApp;
let s: Session;
beforeAll(async () => {
  t = await buildTestApp({ BODY_LIMIT_BYTES: '65536' });
  s = await signup(t.app);
});
afterAll(() => t.close());

const bodies: (string | undefined)[] = [
  undefined,
  '',
  '{',
  'null',
  '[]',
  '"text"',
  '12345678901234567890123456789',
  '{"__proto__":{"admin":true}}',
  '{"constructor":{"prototype":{"x":1}}}',
  JSON.stringify({ email: ['a'], password: { $ne: null }, tenant_name: 1e308, name: null, role: 'root', is_active: 'yes' }),
  JSON.stringify({ email: 'a@b.co', password: 'p'.repeat(5000), tenant_name: '\u0000\ud800', refresh_token: 'x'.repeat(600) }),
  JSON.stringify({ rag: { top_k: 1.5, min_score: 'NaN' }, providers: { llm: null }, provider_keys: { openai: 5 } }),
  JSON.stringify({ expires_at: 'yesterday', reason: { a: 1 }, preferred_voice: [] }),
  JSON.stringify(JSON.parse('{"a":'.repeat(500) + '1' + '}'.repeat(500))),
];
const ids = ['not-a-uuid', '00000000-0000-4000-8000-000000000000', "1' or '1'='1", '%00', 'a'.repeat(300)];

describe('malformed input', () => {
  it('never yields a 5xx on any documented operation', async () => {
    const spec = t.app.swagger() as { paths: Record<string, Record<string, unknown>> };
    const failures: string[] = [];
    let sent = 0;
    for (const [path, ops] of Object.entries(spec.paths)) {
      for (const method of Object.keys(ops)) {
        const urls = path.includes('{id}') ? ids.map((id) => path.replace('{id}', encodeURIComponent(id))) : [path];
        for (const url of urls) {
          for (const payload of bodies) {
            const res = await t.app.inject({
              method: method.toUpperCase() as 'POST',
              url: `${url}?limit=-1&offset=abc&unknown=1`,
              headers: { ...bearer(s.access_token), ...(payload !== undefined && { 'content-type': 'application/json' }) },
              ...(payload !== undefined && { payload }),
            });
            sent++;
            // A deployment without Twilio or LiveKit says so (503 with its code) once the input is valid: not a fault.
            const notConfigured = res.statusCode === 503 && /"code":"(twilio|livekit)_not_configured"/.test(res.body);
            if (res.statusCode >= 500 && !notConfigured) failures.push(`${method.toUpperCase()} ${url} ${payload?.slice(0, 40)} -> ${res.statusCode} ${res.body.slice(0, 120)}`);
            else if (res.statusCode >= 400) expect(res.json().error.code, `${method} ${url}`).toBeTypeOf('string');
          }
        }
      }
    }
    expect(sent).toBeGreaterThan(200);
    expect(failures).toEqual([]);
    // The signed-in user still works afterwards: nothing was corrupted.
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/auth/me', headers: bearer(s.access_token) })).statusCode).toBe(200);
  });
});
