// Every key PUT /api/v1/settings/tenant accepts comes back from GET. The keys, and a valid value for each that
// differs from its default, are generated from the PUT's schema itself: a key added to the settings is covered
// here with nothing to change (or, if no value in POOL fits it, this test says so by name).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { tenantSettingsPatchSchema } from '../src/services/settings.js';
import { buildTestApp, call, type Session, type TestApp, twoTenants } from './helpers.js';

let t: TestApp;
let a: Session;
beforeAll(async () => {
  t = await buildTestApp();
  ({ a } = await twoTenants(t.app));
});
afterAll(() => t.close());

/** Leaf values to try, in order: the first a leaf's schema accepts (and that is not its current value) is used. */
const POOL: unknown[] = [
  'en-GB',
  '+14155550100',
  'https://tools.example.com/v1',
  'sample_tool',
  'A sample value, long enough for a key',
  true,
  false,
  0,
  1,
  0.5,
  42,
  { type: 'object', properties: { order_id: { type: 'string', description: 'The order number' } }, required: ['order_id'] },
];

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** A value `schema` accepts for every key it has, each leaf different from `current` (the value before the PUT). */
function sample(schema: z.ZodType, current: unknown, path: string): Json {
  if (
    schema instanceof z.ZodOptional ||
    schema instanceof z.ZodNullable ||
    schema instanceof z.ZodDefault ||
    schema instanceof z.ZodPrefault
  ) {
    return sample(schema.unwrap() as z.ZodType, current, path);
  }
  if (schema instanceof z.ZodObject) {
    const now = (current ?? {}) as Record<string, unknown>;
    return Object.fromEntries(
      Object.entries(schema.shape as Record<string, z.ZodType>).map(([k, v]) => [k, sample(v, now[k], `${path}.${k}`)]),
    );
  }
  if (schema instanceof z.ZodArray) return [sample(schema.element as z.ZodType, undefined, `${path}[0]`)];
  if (schema instanceof z.ZodRecord) {
    const key = POOL.find((c) => typeof c === 'string' && z.safeParse(schema.keyType, c).success) as string | undefined;
    if (key === undefined) throw new Error(`no key in POOL fits ${path}: add one`);
    return { [key]: sample(schema.valueType as z.ZodType, undefined, `${path}.${key}`) };
  }
  if (schema instanceof z.ZodUnion) return sample(schema.options[0] as z.ZodType, current, path);
  // An enum's own options, a number's bounds, then the pool.
  const own =
    schema instanceof z.ZodEnum
      ? schema.options
      : schema instanceof z.ZodNumber
        ? [schema.minValue, schema.maxValue].filter(Number.isFinite)
        : [];
  const value = [...own, ...POOL].find((c) => schema.safeParse(c).success && JSON.stringify(c) !== JSON.stringify(current));
  if (value === undefined) throw new Error(`no value in POOL fits ${path}: add one`);
  return value as Json;
}

/** Every leaf of `value` with its path (arrays by index), objects walked into. */
function leaves(value: Json, path: string[] = []): [string[], Json][] {
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => leaves(v, [...path, k]));
  }
  return [[path, value]];
}

const at = (value: unknown, path: string[]) => path.reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], value);

describe('tenant settings round trip', () => {
  it('every key the PUT accepts comes back from the GET, with the value sent (a secret: as configured)', async () => {
    const before = (await call(t.app, 'GET', '/api/v1/settings/tenant', a.access_token)).json();
    const body = sample(tenantSettingsPatchSchema, before, 'body');
    const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', a.access_token, body as object);
    expect(put.statusCode, put.body).toBe(200);
    const got = (await call(t.app, 'GET', '/api/v1/settings/tenant', a.access_token)).json();
    expect(got).toEqual(put.json());

    const missing: string[] = [];
    const wrong: string[] = [];
    for (const [path, sent] of leaves(body)) {
      // A sealed value (provider key, tool header) is shown only as configured; everything else as sent.
      const shown = at(got, path);
      const secret = typeof sent === 'string' && typeof shown === 'object' && shown !== null && 'configured' in shown;
      if (shown === undefined) missing.push(path.join('.'));
      else if (secret ? (shown as { configured: boolean }).configured !== true : JSON.stringify(shown) !== JSON.stringify(sent)) {
        wrong.push(`${path.join('.')}: sent ${JSON.stringify(sent)}, got ${JSON.stringify(shown)}`);
      }
    }
    expect(missing, 'keys the PUT accepted that the GET does not return').toEqual([]);
    expect(wrong).toEqual([]);
    // The sample reached everywhere: far more than a handful of keys, secrets among them.
    expect(leaves(body).length).toBeGreaterThan(30);
    expect(leaves(body).filter(([path]) => path[0] === 'provider_keys').length).toBe(Object.keys(got.provider_keys).length);
  });
});
