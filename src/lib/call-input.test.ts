import { describe, expect, it } from 'vitest';
import { callMetadataSchema, callVariablesSchema, fillVariables } from './call-input.js';

describe('fillVariables', () => {
  it('fills known placeholders once, leaves unknown ones and never expands a value', () => {
    const vars = { first_name: 'Ada', evil: '{{first_name}} {{secret}}' };
    expect(fillVariables('Hello {{first_name}}, {{ first_name }}!', vars)).toBe('Hello Ada, Ada!');
    expect(fillVariables('Dear {{last_name}}', vars)).toBe('Dear {{last_name}}');
    expect(fillVariables('Note: {{evil}}', vars)).toBe('Note: {{first_name}} {{secret}}');
    expect(fillVariables('{{toString}} {{__proto__}}', vars)).toBe('{{toString}} {{__proto__}}');
    expect(fillVariables(null, vars)).toBeNull();
    expect(fillVariables('Hi {{first_name}}', undefined)).toBe('Hi {{first_name}}');
    expect(fillVariables('$& $1 {{first_name}}', { first_name: '$& $$' })).toBe('$& $1 $& $$');
  });
});

describe('bounds', () => {
  it('metadata: key count, key length, value size', () => {
    expect(callMetadataSchema.safeParse({ crm_id: 'c_1', tags: ['a'], n: 3, nested: { ok: true } }).success).toBe(true);
    expect(callMetadataSchema.safeParse(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i]))).success).toBe(false);
    expect(callMetadataSchema.safeParse({ ['k'.repeat(65)]: 1 }).success).toBe(false);
    expect(callMetadataSchema.safeParse({ k: 'x'.repeat(1001) }).success).toBe(false);
  });
  it('variables: names, count, plain-text values', () => {
    expect(callVariablesSchema.safeParse({ first_name: 'Ada' }).success).toBe(true);
    for (const bad of [{ 'first-name': 'x' }, { '1st': 'x' }, { name: 3 }, { name: 'x'.repeat(1001) }])
      expect(callVariablesSchema.safeParse(bad).success).toBe(false);
    expect(callVariablesSchema.safeParse(Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`v${i}`, 'x']))).success).toBe(false);
  });
});
