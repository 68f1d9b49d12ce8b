// Rotating SECRET_KEY: the key ring (SECRET_KEY, then SECRET_KEY_PREVIOUS) opens what the old key sealed and verifies
// the tokens it signed; `npm run secrets:rotate` (resealStoredSecrets) re-seals everything under the new key, after
// which the new key alone reads it all; a ring that opens none of the stored secrets is refused at start-up.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';
import { SecretBox } from '../src/services/secret-box.js';
import { checkKeyRing, resealStoredSecrets } from '../src/services/secret-rotation.js';
import { SettingsService } from '../src/services/settings.js';
import { SigningSecretService } from '../src/services/signing-secrets.js';
import { TokenService } from '../src/services/tokens.js';
import { CallTokenService } from '../src/services/call-tokens.js';
import { MemoryCache } from '../src/cache/memory-cache.js';
import { signup, useTestApp } from './helpers.js';

const OLD = 'old-secret-key-that-is-long-enough-0123456789';
const NEW = 'new-secret-key-that-is-long-enough-9876543210';

describe('SECRET_KEY rotation', () => {
  const t = useTestApp({ SECRET_KEY: OLD });

  it('data sealed under the old key reads with the ring, and with the new key alone after secrets:rotate', async () => {
    const s = await signup(t.app);
    const tenantId = s.tenant.id;
    await t.deps.settings.putTenant(tenantId, {
      provider_keys: { openai: 'sk-old-sealed-openai-key', deepgram: 'dg-old-sealed-key' },
    });
    const [signingSecret] = await t.deps.signingSecrets.forSigning(tenantId);
    const db = t.deps.database.db;
    const ring = new SecretBox([NEW, OLD]);
    const newOnly = new SecretBox(NEW);

    // Before: the new key alone opens nothing, and start-up would say why; the ring opens everything.
    expect((await new SettingsService(db, newOnly).forProviders(tenantId)).keys.openai).toBeUndefined();
    expect(await checkKeyRing(db, newOnly)).toMatch(/SECRET_KEY_PREVIOUS/);
    expect(await checkKeyRing(db, ring)).toBeUndefined();
    expect((await new SettingsService(db, ring).forProviders(tenantId)).keys).toMatchObject({
      openai: 'sk-old-sealed-openai-key',
      deepgram: 'dg-old-sealed-key',
    });
    expect(await new SigningSecretService(db, ring).forSigning(tenantId)).toEqual([signingSecret]);

    // secrets:rotate re-seals them under the new key (other test files' tenants may share nothing here: memory DB).
    const first = await resealStoredSecrets(db, ring, { batchSize: 1 });
    expect(first).toMatchObject({ resealed: 3, unreadable: 0 });
    expect(first.rowsUpdated).toBe(2);
    // Idempotent: nothing left to re-seal.
    expect(await resealStoredSecrets(db, ring)).toMatchObject({ sealed: 3, resealed: 0, rowsUpdated: 0 });

    // After: the new key alone reads it all, and the old one alone nothing.
    expect((await new SettingsService(db, newOnly).forProviders(tenantId)).keys).toMatchObject({
      openai: 'sk-old-sealed-openai-key',
      deepgram: 'dg-old-sealed-key',
    });
    expect(await new SigningSecretService(db, newOnly).forSigning(tenantId)).toEqual([signingSecret]);
    expect(await checkKeyRing(db, newOnly)).toBeUndefined();
    expect(await checkKeyRing(db, new SecretBox(OLD))).toMatch(/none of the \d+ stored secrets/);
    // A sealed value written now is under the newest key.
    expect(ring.openWith(ring.seal('x'))).toEqual({ plain: 'x', keyIndex: 0 });
  });

  it('tokens signed with the old key verify while it is in the ring, and not after', async () => {
    const db = t.deps.database.db;
    const s = await signup(t.app);
    const ttl = 60_000;
    // The app signed this access token with OLD.
    const ids = { userId: s.user.id, tenantId: s.tenant.id };
    expect(await new TokenService(db, [NEW, OLD], ttl, ttl).verifyAccess(s.access_token)).toEqual(ids);
    await expect(new TokenService(db, NEW, ttl, ttl).verifyAccess(s.access_token)).rejects.toMatchObject({ code: 'invalid_token' });
    // The ring signs with the newest key.
    const fresh = await new TokenService(db, [NEW, OLD], ttl, ttl).signAccess(ids.userId, ids.tenantId);
    expect(await new TokenService(db, NEW, ttl, ttl).verifyAccess(fresh)).toEqual(ids);
    await expect(new TokenService(db, OLD, ttl, ttl).verifyAccess(fresh)).rejects.toMatchObject({ code: 'invalid_token' });

    // Media tokens (the TwiML's, a browser call's) the same way.
    const grant = { tenantId: s.tenant.id, callId: '00000000-0000-4000-8000-000000000001', channel: 'twilio' as const };
    const { token } = await new CallTokenService(OLD, new MemoryCache()).sign(grant);
    expect(await new CallTokenService([NEW, OLD], new MemoryCache()).verify(token, 'twilio')).toMatchObject({ callId: grant.callId });
    expect(await new CallTokenService(NEW, new MemoryCache()).verify(token, 'twilio')).toBeNull();
  });

  it('a wrong ring is a clear configuration error', () => {
    const base = { NODE_ENV: 'test', DATA_DIR: 'memory://', SECRET_KEY: NEW };
    expect(loadConfig({ ...base, SECRET_KEY_PREVIOUS: `${OLD}, ${'x'.repeat(40)}` }).secretKeys).toEqual([NEW, OLD, 'x'.repeat(40)]);
    expect(() => loadConfig({ ...base, SECRET_KEY_PREVIOUS: 'too-short' })).toThrow(/SECRET_KEY_PREVIOUS: each key must be at least 32/);
    expect(() => loadConfig({ ...base, SECRET_KEY_PREVIOUS: NEW })).toThrow(ConfigError);
    expect(() => loadConfig({ ...base, SECRET_KEY_PREVIOUS: `${OLD},${OLD}` })).toThrow(/lists SECRET_KEY or a key twice/);
  });
});
