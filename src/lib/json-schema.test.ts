import { describe, expect, it } from 'vitest';
import { checkArguments, type ObjectSchema, toolParametersSchema } from './json-schema.js';

const order: ObjectSchema = {
  type: 'object',
  properties: {
    size: { type: 'string', enum: ['small', 'large'] },
    count: { type: 'integer' },
    price: { type: 'number' },
    gift: { type: 'boolean' },
    items: { type: 'array', items: { type: 'object', properties: { sku: { type: 'string' } }, required: ['sku'] } },
    address: { type: 'object', properties: { city: { type: 'string' } } },
  },
  required: ['size', 'count'],
};

describe('tool argument schemas', () => {
  it('accepts the supported subset, nested', () => {
    expect(toolParametersSchema.safeParse(order).success).toBe(true);
    expect(toolParametersSchema.safeParse({ type: 'object', properties: {} }).success).toBe(true);
  });

  it('refuses other keywords, types and malformed schemas', () => {
    for (const bad of [
      { type: 'object', properties: { a: { type: 'string', format: 'date' } } },
      { type: 'object', properties: { a: { type: 'null' } } },
      { type: 'object', properties: { a: { type: ['string', 'null'] } } },
      { type: 'object', properties: { a: { $ref: '#/x' } } },
      { type: 'object', properties: { a: { type: 'integer', enum: ['one'] } } },
      { type: 'object', properties: {}, required: ['a'] },
      { type: 'object', properties: {}, oneOf: [] },
      { type: 'array', items: { type: 'string' } },
      { properties: {} },
      'object',
    ]) {
      expect(toolParametersSchema.safeParse(bad).success, JSON.stringify(bad)).toBe(false);
    }
  });

  it('refuses schemas nested deeper than 5 levels, however deep, before walking them (no stack overflow)', () => {
    const nest = (levels: number, wrap: (inner: unknown) => unknown) => {
      let s: unknown = { type: 'string' };
      for (let i = 0; i < levels; i++) s = wrap(s);
      return s;
    };
    const inObject = (inner: unknown) => ({ type: 'object', properties: { a: inner } });
    const inArray = (inner: unknown) => ({ type: 'array', items: inner });
    expect(toolParametersSchema.safeParse(nest(4, inObject)).success).toBe(true);
    for (const deep of [nest(5, inObject), nest(700, inObject), nest(20_000, inObject), inObject(nest(20_000, inArray))]) {
      const r = toolParametersSchema.safeParse(deep);
      expect(r.success).toBe(false);
      expect(r.error?.issues[0]?.message).toBe('nested more than 5 levels deep');
    }
  });

  it('checks arguments: types, enums, required, nested, and nothing undeclared', () => {
    expect(
      checkArguments(order, { size: 'small', count: 2, price: 9.5, gift: false, items: [{ sku: 'A1' }], address: { city: 'Oslo' } }),
    ).toEqual([]);
    expect(
      checkArguments(order, {
        size: 'huge',
        count: 1.5,
        price: 'free',
        gift: 'yes',
        items: [{}, { sku: 3 }],
        address: { town: 'x' },
        extra: 1,
      }),
    ).toEqual([
      'size must be one of "small", "large"',
      'count must be an integer',
      'price must be a number',
      'gift must be true or false',
      'items[0].sku is required',
      'items[1].sku must be a string',
      'address.town is not an argument of this tool',
      'extra is not an argument of this tool',
    ]);
    expect(checkArguments(order, {})).toEqual(['size is required', 'count is required']);
    expect(checkArguments(order, null)).toEqual(['arguments must be an object']);
  });
});
