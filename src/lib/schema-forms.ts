// One Zod schema, three forms of it: as stored (secrets sealed), as a PUT sends it (a deep patch, secrets in
// clear) and as a GET shows it (secrets only as configured/last4). A concept is declared once (the tenant
// settings: services/settings.ts) and these derive the rest: the schemas at run time, their types at the type
// level, so a field added to the declaration is accepted, stored and shown with nothing else to change.
import { z } from 'zod';

const sealedString = () => z.string().brand<'sealed'>();
/** A secret as stored: ciphertext (services/secret-box.ts), never in clear outside the code that uses it. */
export type Sealed = z.output<ReturnType<typeof sealedString>>;

/** Each sealed field's clear form: what a PUT sends, checked before it is sealed. */
const clearForms = new WeakMap<z.ZodType, z.ZodType<string>>();

/** A field stored sealed, written in clear (checked by `clear`) and shown only as a `SecretStatus`. */
export function sealed(clear: z.ZodType<string>) {
  const s = sealedString();
  clearForms.set(s, clear);
  return s;
}

export const secretStatusSchema = z.object({ configured: z.boolean(), last4: z.string().nullable() });
export type SecretStatus = z.infer<typeof secretStatusSchema>;
/** A secret sent back as the GET shows it: keeps the stored value. */
export const keptSecretSchema = z.strictObject({ configured: z.literal(true), last4: z.string().nullable().optional() });
export type KeptSecret = z.infer<typeof keptSecretSchema>;

/** What a PUT may send: objects merged key by key, every key optional; arrays replaced whole (see `WriteOf`). */
export type PatchOf<T> = { [K in keyof T]?: PatchField<T[K]> };
/** A sealed field in clear, null removing it; an object merged; anything else replaced. */
type PatchField<T> = [T] extends [Sealed | undefined]
  ? string | null
  : T extends readonly unknown[]
    ? WriteOf<T>
    : T extends object
      ? PatchOf<T>
      : T;
/** A value a PUT replaces whole: as declared, with its secrets in clear or sent back as `KeptSecret`. */
export type WriteOf<T> = T extends Sealed
  ? string | KeptSecret
  : T extends readonly (infer E)[]
    ? WriteOf<E>[]
    : T extends object
      ? { [K in keyof T]: WriteOf<T[K]> }
      : T;
/** What a GET shows: as declared, each secret (set or not) as its `SecretStatus`. */
export type ViewOf<T> = T extends readonly (infer E)[] ? ViewOf<E>[] : T extends object ? ViewObject<T> : T;
type SealedKeys<T> = { [K in keyof T]-?: [T[K]] extends [Sealed | undefined] ? K : never }[keyof T];
type ViewObject<T> = Flat<
  { [K in keyof T as K extends SealedKeys<T> ? never : K]: ViewOf<T[K]> } & { [K in SealedKeys<T>]-?: SecretStatus }
>;
/** One object type instead of an intersection, for readable types. */
type Flat<T> = { [K in keyof T]: T[K] };

type Wrapper = z.ZodDefault | z.ZodPrefault | z.ZodOptional | z.ZodNullable;
const isWrapper = (s: z.ZodType): s is Wrapper =>
  s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable;
const isContainer = (s: z.ZodType): s is z.ZodObject | z.ZodArray | z.ZodRecord =>
  s instanceof z.ZodObject || s instanceof z.ZodArray || s instanceof z.ZodRecord;
/** An object schema's fields (the classic API's types: every schema here is built with it). */
const fields = (s: z.ZodObject) => Object.entries(s.shape as Record<string, z.ZodType>);
const mapShape = (s: z.ZodObject, f: (s: z.ZodType) => z.ZodType) => Object.fromEntries(fields(s).map(([k, v]) => [k, f(v)]));
/** A rebuilt schema keeps the description its source had (the OpenAPI document shows it). */
const described = (from: z.ZodType, to: z.ZodType) => (from.description ? to.describe(from.description) : to);

function hasSecret(s: z.ZodType): boolean {
  if (clearForms.has(s)) return true;
  if (isWrapper(s)) return hasSecret(s.unwrap() as z.ZodType);
  if (s instanceof z.ZodObject) return fields(s).some(([, v]) => hasSecret(v));
  if (s instanceof z.ZodArray) return hasSecret(s.element as z.ZodType);
  if (s instanceof z.ZodRecord) return hasSecret(s.valueType as z.ZodType);
  return false;
}

/** The PUT form of `schema`: no defaults (left out keeps what is stored), objects strict and every key optional. */
export function patchSchemaOf<T extends z.ZodObject>(schema: T): z.ZodType<PatchOf<z.output<T>>> {
  return patchNode(schema) as z.ZodType<PatchOf<z.output<T>>>;
}

function patchNode(s: z.ZodType): z.ZodType {
  if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional)
    return described(s, patchNode(s.unwrap() as z.ZodType));
  const clear = clearForms.get(s);
  if (clear) return clear.nullable();
  if (s instanceof z.ZodObject) return described(s, z.strictObject(mapShape(s, (v) => patchNode(v).optional())));
  return writeNode(s);
}

/** A value replaced whole: as declared (defaults, limits, refinements kept), secrets in clear or kept. */
function writeNode(s: z.ZodType): z.ZodType {
  if (!hasSecret(s)) return s;
  const clear = clearForms.get(s);
  if (clear) return z.union([clear, keptSecretSchema]);
  if (s instanceof z.ZodDefault) return described(s, writeNode(s.unwrap() as z.ZodType).default(s._zod.def.defaultValue));
  if (s instanceof z.ZodPrefault) return described(s, writeNode(s.unwrap() as z.ZodType).prefault(s._zod.def.defaultValue));
  if (s instanceof z.ZodOptional) return described(s, writeNode(s.unwrap() as z.ZodType).optional());
  if (s instanceof z.ZodNullable) return described(s, writeNode(s.unwrap() as z.ZodType).nullable());
  // A clone keeps the container's own checks (maximum sizes, refinements) with the rewritten parts.
  if (s instanceof z.ZodObject) return described(s, s.clone({ ...s._zod.def, shape: mapShape(s, writeNode) }));
  if (s instanceof z.ZodArray) return described(s, s.clone({ ...s._zod.def, element: writeNode(s.element as z.ZodType) }));
  if (s instanceof z.ZodRecord) return described(s, s.clone({ ...s._zod.def, valueType: writeNode(s.valueType as z.ZodType) }));
  throw new Error(`a sealed field inside a ${s._zod.def.type} schema is not supported`);
}

/**
 * The GET form of `schema`: secrets as `SecretStatus` (every one, set or not), objects not strict, containers
 * without their defaults (a view always has them); leaves as declared, with their defaults for the document.
 */
export function viewSchemaOf<T extends z.ZodObject>(schema: T): z.ZodType<ViewOf<z.output<T>>> {
  return viewNode(schema) as z.ZodType<ViewOf<z.output<T>>>;
}

function viewNode(s: z.ZodType): z.ZodType {
  if (clearForms.has(s) || (s instanceof z.ZodOptional && clearForms.has(s.unwrap() as z.ZodType))) return secretStatusSchema;
  if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault)
    return isContainer(s.unwrap() as z.ZodType) ? viewNode(s.unwrap() as z.ZodType) : s;
  if (s instanceof z.ZodOptional) return viewNode(s.unwrap() as z.ZodType).optional();
  if (s instanceof z.ZodNullable) return viewNode(s.unwrap() as z.ZodType).nullable();
  if (s instanceof z.ZodObject) return z.object(mapShape(s, viewNode));
  if (s instanceof z.ZodArray) return s.clone({ ...s._zod.def, element: viewNode(s.element as z.ZodType) });
  if (s instanceof z.ZodRecord) return s.clone({ ...s._zod.def, valueType: viewNode(s.valueType as z.ZodType) });
  // A preprocess has no inverse, and responses are encoded through their schema: the view is what it produced.
  if (s instanceof z.ZodPipe && s.in instanceof z.ZodTransform) return viewNode(s.out as z.ZodType);
  return s;
}

/** `value` (parsed by `schema`) as the GET shows it: each sealed field replaced by `status(sealed)`. */
export function viewOf<T extends z.ZodObject>(
  schema: T,
  value: z.output<T>,
  status: (sealed: string | undefined) => SecretStatus,
): ViewOf<z.output<T>> {
  return viewValue(schema, value, status) as ViewOf<z.output<T>>;
}

function viewValue(s: z.ZodType, value: unknown, status: (sealed: string | undefined) => SecretStatus): unknown {
  if (clearForms.has(s)) return status(value as string | undefined);
  if (s instanceof z.ZodOptional && clearForms.has(s.unwrap() as z.ZodType)) return status(value as string | undefined);
  if (value === undefined || value === null) return value;
  if (isWrapper(s)) return viewValue(s.unwrap() as z.ZodType, value, status);
  if (s instanceof z.ZodObject) {
    const v = value as Record<string, unknown>;
    const out: Record<string, unknown> = {};
    for (const [k, field] of fields(s)) {
      const shown = viewValue(field, v[k], status);
      if (shown !== undefined) out[k] = shown;
    }
    return out;
  }
  if (s instanceof z.ZodArray) return (value as unknown[]).map((e) => viewValue(s.element as z.ZodType, e, status));
  if (s instanceof z.ZodRecord) {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k, viewValue(s.valueType as z.ZodType, v, status)]),
    );
  }
  return value;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * `patch` over `base` as a PUT means it: objects merged key by key, anything else (arrays included) replaced; a
 * key left out (or undefined) keeps its value, null removes it (the schema's parse then gives it its default:
 * null for the nullable fields, nothing for a secret).
 */
export function deepMerge(base: unknown, patch: unknown): unknown {
  if (!isPlainObject(patch)) return patch;
  const out: Record<string, unknown> = isPlainObject(base) ? { ...base } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === undefined) continue;
    if (v === null) delete out[k];
    else out[k] = deepMerge(out[k], v);
  }
  return out;
}
