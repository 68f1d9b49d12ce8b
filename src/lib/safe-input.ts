// What every piece of text a client sends must be, and how deep its JSON may nest: the one check applied to every
// request (bodies, query strings, path parameters: the preValidation hook in http/app.ts) and to what arrives
// outside that hook (multipart filenames and fields, chat websocket messages).
//
// Why: PostgreSQL text and jsonb cannot hold NUL (the driver answers `invalid byte sequence`), an unpaired UTF-16
// surrogate cannot be encoded as UTF-8 (jsonb refuses its `\ud800` escape), and recursive code (Zod's recursive
// schemas, our own walkers) overflows the stack on JSON nested hundreds deep. Refusing these at the door keeps
// every field of every route, present and future, a clear 422 instead of a 500 deep inside.

/** No legitimate request nests deeper (a tool's parameters, the deepest, stay under 20 levels). */
export const MAX_INPUT_DEPTH = 32;

// NUL, a high surrogate not followed by a low one, or a low surrogate not preceded by a high one.
// eslint-disable-next-line no-control-regex -- finding NUL is the point
const UNSAFE_TEXT = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why `s` cannot be stored as text, or undefined when it can. */
export function unsafeTextReason(s: string): string | undefined {
  const m = UNSAFE_TEXT.exec(s);
  if (!m) return undefined;
  return m[0] === '\u0000' ? 'must not contain NUL (\\u0000) characters' : 'must be valid Unicode text (no unpaired surrogate)';
}

export interface InputIssue {
  /** Where in the value: object keys and array indexes, from the top. */
  path: (string | number)[];
  message: string;
}

const isPlainContainer = (v: unknown): v is Record<string, unknown> | unknown[] => {
  if (Array.isArray(v)) return true;
  if (v === null || typeof v !== 'object') return false;
  const proto = Object.getPrototypeOf(v);
  // Plain objects from JSON.parse, and the null-prototype objects query-string parsers make; never Buffers.
  return proto === Object.prototype || proto === null;
};

/**
 * The first problem in `value` (a parsed JSON body, a query or params object, a string): text that is not safe to
 * store, in a value or an object key, or nesting deeper than `maxDepth`. Iterative, so any depth is checked safely.
 */
export function findUnsafeInput(value: unknown, maxDepth = MAX_INPUT_DEPTH): InputIssue | undefined {
  const stack: { v: unknown; path: (string | number)[] }[] = [{ v: value, path: [] }];
  while (stack.length > 0) {
    const { v, path } = stack.pop()!;
    if (typeof v === 'string') {
      const reason = unsafeTextReason(v);
      if (reason) return { path, message: reason };
      continue;
    }
    if (!isPlainContainer(v)) continue;
    if (path.length >= maxDepth) return { path, message: `is nested more than ${maxDepth} levels deep` };
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i], path: [...path, i] });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i]!;
      const reason = unsafeTextReason(key);
      // The key itself is left out of the path: it is the bad text.
      if (reason) return { path, message: `has a field name that ${reason}` };
      stack.push({ v: v[key], path: [...path, key] });
    }
  }
  return undefined;
}
