import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { deepMerge, type KeptSecret, patchSchemaOf, type SecretStatus, sealed, viewOf, viewSchemaOf } from './schema-forms.js';

// A small declaration with every case the settings have: defaults, a nullable, a nested object, secrets in a
// merged object and in a list replaced whole.
const declared = z.strictObject({
  name: z.string().min(1).default('Assistant'),
  note: z.string().nullable().default(null),
  limits: z.strictObject({ max: z.number().int().max(10).default(5), mode: z.enum(['a', 'b']).default('a') }).prefault({}),
  keys: z.strictObject({ vendor: sealed(z.string().min(8)).optional() }).prefault({}),
  hooks: z
    .array(z.strictObject({ url: z.string(), headers: z.record(z.string(), sealed(z.string().min(1))).default({}) }))
    .max(2)
    .default([]),
});
const status = (s: string | undefined) => ({ configured: s !== undefined, last4: null });

describe('the PUT form', () => {
  const patch = patchSchemaOf(declared);

  it('takes any part, strictly, with no defaults filled in', () => {
    expect(patch.parse({})).toEqual({});
    expect(patch.parse({ limits: { max: 7 } })).toEqual({ limits: { max: 7 } });
    expect(patch.safeParse({ limits: { max: 11 } }).success).toBe(false);
    expect(patch.safeParse({ limits: { other: 1 } }).success).toBe(false);
    expect(patch.safeParse({ other: 1 }).success).toBe(false);
  });

  it('takes a secret in clear (checked), or null to remove it', () => {
    expect(patch.parse({ keys: { vendor: 'long enough' } })).toEqual({ keys: { vendor: 'long enough' } });
    expect(patch.parse({ keys: { vendor: null } })).toEqual({ keys: { vendor: null } });
    expect(patch.safeParse({ keys: { vendor: 'short' } }).success).toBe(false);
  });

  it('takes a list whole, as declared (defaults and limits kept), its secrets in clear or sent back as shown', () => {
    expect(patch.parse({ hooks: [{ url: 'u' }] })).toEqual({ hooks: [{ url: 'u', headers: {} }] });
    expect(patch.parse({ hooks: [{ url: 'u', headers: { A: 'x', B: { configured: true, last4: null } } }] }).hooks?.[0]?.headers).toEqual({
      A: 'x',
      B: { configured: true, last4: null },
    });
    expect(patch.safeParse({ hooks: [{ url: 'u', headers: { A: '' } }] }).success).toBe(false);
    expect(patch.safeParse({ hooks: [{ url: 'u' }, { url: 'v' }, { url: 'w' }] }).success).toBe(false);
  });
});

describe('the GET form', () => {
  it('shows every secret, set or not, as its status; nothing else changes', () => {
    const stored = declared.parse({ keys: {}, hooks: [{ url: 'u', headers: { A: 'sealed-a' } }] });
    const shown = viewOf(declared, stored, status);
    expect(shown).toEqual({
      name: 'Assistant',
      note: null,
      limits: { max: 5, mode: 'a' },
      keys: { vendor: { configured: false, last4: null } },
      hooks: [{ url: 'u', headers: { A: { configured: true, last4: null } } }],
    });
    // The view's schema describes exactly that, and encodes it (as the response serializer does).
    expect(z.safeEncode(viewSchemaOf(declared), shown).success).toBe(true);
    expect(viewSchemaOf(declared).safeParse({ ...shown, keys: { vendor: 'in clear' } }).success).toBe(false);
  });
});

describe('deepMerge', () => {
  it('merges objects key by key, replaces lists, keeps what is left out and removes what is null', () => {
    const base = { name: 'N', note: 'x', limits: { max: 5, mode: 'a' }, keys: { vendor: 's1' }, hooks: [{ url: 'u' }] };
    expect(deepMerge(base, { limits: { max: 7 }, keys: { vendor: null }, note: null, hooks: [], name: undefined })).toEqual({
      name: 'N',
      limits: { max: 7, mode: 'a' },
      keys: {},
      hooks: [],
    });
    // The one parse after the merge gives a removed key its default.
    expect(declared.parse(deepMerge(declared.parse({ note: 'x' }), { note: null })).note).toBeNull();
  });
});

describe('the types', () => {
  it('say what the schemas check (tsc checks these)', () => {
    expectTypeOf<z.output<ReturnType<typeof patchSchemaOf<typeof declared>>>>().toEqualTypeOf<{
      name?: string;
      note?: string | null;
      limits?: { max?: number; mode?: 'a' | 'b' };
      keys?: { vendor?: string | null };
      hooks?: { url: string; headers: Record<string, string | KeptSecret> }[];
    }>();
    type View = z.output<ReturnType<typeof viewSchemaOf<typeof declared>>>;
    expectTypeOf<View['keys']>().toEqualTypeOf<{ vendor: SecretStatus }>();
    expectTypeOf<View['hooks'][number]['headers']>().toEqualTypeOf<Record<string, SecretStatus>>();
    expectTypeOf<View['limits']>().toEqualTypeOf<{ max: number; mode: 'a' | 'b' }>();
    expectTypeOf<View['note']>().toEqualTypeOf<string | null>();
  });
});
