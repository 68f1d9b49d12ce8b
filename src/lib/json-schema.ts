// The JSON Schema subset tenant tools describe their arguments with (type, properties, required, enum,
// description, items; string, number, integer, boolean, array, object): a Zod schema that accepts only
// well-formed schemas of that subset, and the check of a model's arguments against one. A subset, so that what
// we accept is exactly what we can enforce before a request leaves for the tenant's server.
import { z } from 'zod';

export type JsonSchema =
  | { type: 'string'; description?: string; enum?: string[] }
  | { type: 'number' | 'integer'; description?: string; enum?: number[] }
  | { type: 'boolean'; description?: string }
  | { type: 'array'; description?: string; items: JsonSchema }
  | ObjectSchema;

export interface ObjectSchema {
  type: 'object';
  description?: string;
  properties: Record<string, JsonSchema>;
  required?: string[];
}

/** Deep enough for an address inside a booking inside a list; deeper schemas are a mistake or an attack. */
const MAX_DEPTH = 5;

const description = z.string().max(1000).optional();
const propertyName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/, 'must be 1 to 64 letters, digits, _ . or -, starting with a letter or _');

/** One argument's schema; named, so the OpenAPI document can refer to it (it contains itself). */
const node: z.ZodType<JsonSchema> = z
  .lazy(() =>
    z.discriminatedUnion(
      'type',
      [
        z.strictObject({ type: z.literal('string'), description, enum: z.array(z.string().max(200)).min(1).max(100).optional() }),
        z.strictObject({ type: z.enum(['number', 'integer']), description, enum: z.array(z.number()).min(1).max(100).optional() }),
        z.strictObject({ type: z.literal('boolean'), description }),
        z.strictObject({ type: z.literal('array'), description, items: node }),
        objectSchema(),
      ],
      { error: 'must be an object with "type" one of string, number, integer, boolean, array, object' },
    ),
  )
  .meta({ id: 'ToolArgumentSchema', description: 'A JSON Schema for one argument (the subset tools may use)' });

// A new instance per use: were the top-level parameters the very schema the recursion runs through, the OpenAPI
// document would refer to an unnamed definition.
function objectSchema() {
  return z
    .strictObject({
      type: z.literal('object'),
      description,
      properties: z.record(propertyName, node).refine((p) => Object.keys(p).length <= 50, 'at most 50 properties'),
      required: z.array(z.string()).max(50).optional(),
    })
    .superRefine((o, ctx) => {
      o.required?.forEach((name, i) => {
        if (!(name in o.properties))
          ctx.addIssue({ code: 'custom', path: ['required', i], message: `"${name}" is not one of the properties` });
      });
    });
}

/**
 * A tool's parameters: an object schema, at most MAX_DEPTH levels deep. The depth is measured on the raw input,
 * without recursion, before the recursive schema walks it: a schema nested hundreds deep would overflow the stack.
 */
export const toolParametersSchema: z.ZodType<ObjectSchema> = z.preprocess((input, ctx) => {
  if (schemaDepthExceeds(input, MAX_DEPTH)) ctx.addIssue({ code: 'custom', message: `nested more than ${MAX_DEPTH} levels deep`, input });
  return input;
}, objectSchema()) as unknown as z.ZodType<ObjectSchema>;

/** Whether schema nodes (linked by `items` and `properties`) nest deeper than `max`; iterative, so any input is safe. */
function schemaDepthExceeds(input: unknown, max: number): boolean {
  const stack: { node: unknown; depth: number }[] = [{ node: input, depth: 1 }];
  while (stack.length > 0) {
    const { node, depth } = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > max) return true;
    const { items, properties } = node as { items?: unknown; properties?: unknown };
    if (items !== undefined) stack.push({ node: items, depth: depth + 1 });
    if (properties !== null && typeof properties === 'object') {
      for (const child of Object.values(properties)) stack.push({ node: child, depth: depth + 1 });
    }
  }
  return false;
}

/**
 * What is wrong with `value` as arguments for `schema`, one line per problem (empty: valid). Arguments that are
 * not declared are refused too: the tenant's server gets exactly what its schema promised.
 */
export function checkArguments(schema: ObjectSchema, value: unknown): string[] {
  const problems: string[] = [];
  check(schema, value, '', problems);
  return problems;
}

function check(s: JsonSchema, v: unknown, at: string, out: string[]): void {
  const name = at || 'arguments';
  switch (s.type) {
    case 'string':
      if (typeof v !== 'string') return void out.push(`${name} must be a string`);
      break;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) return void out.push(`${name} must be a number`);
      break;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) return void out.push(`${name} must be an integer`);
      break;
    case 'boolean':
      if (typeof v !== 'boolean') out.push(`${name} must be true or false`);
      return;
    case 'array':
      if (!Array.isArray(v)) return void out.push(`${name} must be an array`);
      v.forEach((item, i) => check(s.items, item, `${name}[${i}]`, out));
      return;
    case 'object': {
      if (typeof v !== 'object' || v === null || Array.isArray(v)) return void out.push(`${name} must be an object`);
      const obj = v as Record<string, unknown>;
      for (const key of s.required ?? []) if (obj[key] === undefined) out.push(`${at ? `${at}.` : ''}${key} is required`);
      for (const [key, item] of Object.entries(obj)) {
        const path = at ? `${at}.${key}` : key;
        const prop = Object.hasOwn(s.properties, key) ? s.properties[key] : undefined;
        if (!prop) out.push(`${path} is not an argument of this tool`);
        else if (item !== undefined) check(prop, item, path, out);
      }
      return;
    }
  }
  if (s.enum && !(s.enum as unknown[]).includes(v)) out.push(`${name} must be one of ${s.enum.map((e) => JSON.stringify(e)).join(', ')}`);
}
