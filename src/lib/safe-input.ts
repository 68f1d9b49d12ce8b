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

/** A container still to be walked, linked to its parent so a path is only built for the one problem reported. */
interface Pending {
  v: Record<string, unknown> | unknown[];
  depth: number;
  parent: Pending | undefined;
  key: string | number | undefined;
}

function pathOf(p: Pending | undefined, ...tail: (string | number)[]): (string | number)[] {
  const path = tail;
  for (let at = p; at?.parent; at = at.parent) path.unshift(at.key!);
  return path;
}

/**
 * The first problem in `value` (a parsed JSON body, a query or params object, a string): text that is not safe to
 * store, in a value or an object key, or nesting deeper than `maxDepth`. Iterative, so any depth is checked
 * safely; linear in the size of the value (a 200,000-element array takes a few ms).
 */
export function findUnsafeInput(value: unknown, maxDepth = MAX_INPUT_DEPTH): InputIssue | undefined {
  if (typeof value === 'string') {
    const reason = unsafeTextReason(value);
    return reason ? { path: [], message: reason } : undefined;
  }
  if (!isPlainContainer(value)) return undefined;
  const stack: Pending[] = [{ v: value, depth: 0, parent: undefined, key: undefined }];
  while (stack.length > 0) {
    const p = stack.pop()!;
    if (p.depth >= maxDepth) return { path: pathOf(p), message: `is nested more than ${maxDepth} levels deep` };
    const visit = (child: unknown, key: string | number): InputIssue | undefined => {
      if (typeof child === 'string') {
        const reason = unsafeTextReason(child);
        if (reason) return { path: pathOf(p, key), message: reason };
      } else if (isPlainContainer(child)) stack.push({ v: child, depth: p.depth + 1, parent: p, key });
      return undefined;
    };
    if (Array.isArray(p.v)) {
      for (let i = 0; i < p.v.length; i++) {
        const issue = visit(p.v[i], i);
        if (issue) return issue;
      }
      continue;
    }
    for (const key of Object.keys(p.v)) {
      const reason = unsafeTextReason(key);
      // The key itself is left out of the path: it is the bad text.
      if (reason) return { path: pathOf(p), message: `has a field name that ${reason}` };
      const issue = visit(p.v[key], key);
      if (issue) return issue;
    }
  }
  return undefined;
}
