// `npm run docs:config`: writes docs/configuration.md from the Zod schema of the environment (src/config.ts: each
// variable's type and default) and the comments of .env.example (what each does), so neither can drift from the
// code: test/config-docs.test.ts fails when the file is stale, or when .env.example misses a variable or shows a
// value other than its default. A variable's own Zod description (`.describe()`), if it has one, wins over the comment.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { z } from 'zod';
import { ENV_SCHEMAS } from '../src/config.js';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
export const CONFIG_DOCS_PATH = path.join(root, 'docs', 'configuration.md');
export const ENV_EXAMPLE_PATH = path.join(root, '.env.example');

/** What the documentation says of one variable. `defaultValue` undefined: unset unless given. */
export interface VariableDoc {
  name: string;
  type: string;
  defaultValue: string | undefined;
  description: string | undefined;
}

// Zod 4 keeps a schema's parts in `_zod.def`; only the kinds config.ts uses are read here.
interface Def {
  type: string;
  in?: z.ZodType;
  out?: z.ZodType;
  innerType?: z.ZodType;
  defaultValue?: unknown;
  entries?: Record<string, string>;
  format?: string;
  checks?: { _zod: { def: { check: string; format?: string; pattern?: RegExp } } }[];
}
const defOf = (s: z.ZodType) => (s as unknown as { _zod: { def: Def } })._zod.def;

/** The variable's type in words and its default, read through the preprocess/optional/default/pipe wrappers. */
export function describeSchema(schema: z.ZodType): { type: string; defaultValue: string | undefined } {
  let defaultValue: string | undefined;
  let s: z.ZodType | undefined = schema;
  while (s) {
    const meta = s.meta() as { type?: string } | undefined;
    const def = defOf(s);
    if (def.type === 'default') {
      defaultValue ??= String(def.defaultValue);
      s = def.innerType;
      continue;
    }
    if (meta?.type) return { type: meta.type, defaultValue };
    switch (def.type) {
      case 'pipe': {
        // z.preprocess(f, inner) is a pipe from a transform to inner; x.transform(f) is a pipe from x to a transform.
        s = defOf(def.out!).type === 'transform' ? def.in : def.out;
        continue;
      }
      case 'optional':
        s = def.innerType;
        continue;
      case 'enum': {
        const values = Object.values(def.entries ?? {});
        if (values.includes('true') && values.includes('false')) return { type: 'boolean (true/false)', defaultValue };
        return { type: `one of ${values.map((v) => `\`${v}\``).join(', ')}`, defaultValue };
      }
      case 'number': {
        const n = s as unknown as { isInt: boolean; minValue: number | null; maxValue: number | null };
        const range = n.minValue !== null && n.maxValue !== null ? ` ${n.minValue}..${n.maxValue}` : '';
        return { type: `${n.isInt ? 'integer' : 'number'}${range}`, defaultValue };
      }
      case 'string': {
        if (def.format === 'email') return { type: 'email address', defaultValue };
        const pattern = def.checks?.map((c) => c._zod.def).find((c) => c.format === 'regex')?.pattern;
        if (pattern) return { type: `string matching \`${pattern.source}\``, defaultValue };
        const min = (s as unknown as { minLength: number | null }).minLength;
        return { type: min ? `string, at least ${min} characters` : 'string', defaultValue };
      }
      default:
        return { type: def.type, defaultValue };
    }
  }
  return { type: 'unknown', defaultValue };
}

/** One group of .env.example: the comment above it and the variables it introduces, with their example values. */
export interface EnvExampleGroup {
  comment: string;
  variables: { name: string; value: string }[];
}

/**
 * .env.example read as groups: comment lines followed by the variable lines they introduce (a blank line or the
 * next comment ends the group). The file's opening paragraph, followed by no variable, is not a group.
 */
export function parseEnvExample(text: string): EnvExampleGroup[] {
  const groups: EnvExampleGroup[] = [];
  let comment: string[] = [];
  let current: EnvExampleGroup | undefined;
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) {
      current = undefined;
      comment.push(line.replace(/^#\s?/, ''));
    } else if (/^[A-Z0-9_]+=/.test(line)) {
      if (!current) {
        current = { comment: comment.join(' ').trim(), variables: [] };
        groups.push(current);
        comment = [];
      }
      const eq = line.indexOf('=');
      current.variables.push({ name: line.slice(0, eq), value: line.slice(eq + 1) });
    } else {
      current = undefined;
      comment = [];
    }
  }
  return groups;
}

export function variableDocs(): VariableDoc[] {
  return ENV_SCHEMAS.flatMap((schema) =>
    Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => ({
      name,
      ...describeSchema(field),
      description: field.description,
    })),
  );
}

const code = (v: string | undefined) => (v === undefined || v === '' ? '(unset)' : `\`${v}\``);

/** docs/configuration.md, in .env.example's order and groups; variables it lacks are listed at the end. */
export function renderConfigDocs(envExample: string = readFileSync(ENV_EXAMPLE_PATH, 'utf8')): string {
  const docs = new Map(variableDocs().map((d) => [d.name, d]));
  const out = [
    '# Configuration',
    '',
    '<!-- Generated by `npm run docs:config` (scripts/config-docs.ts) from the Zod schema in src/config.ts and the',
    '     comments of .env.example. Do not edit: test/config-docs.test.ts fails when this file is stale. -->',
    '',
    'Every variable the service reads (only `src/config.ts` reads the environment), in the order and groups of',
    '[`.env.example`](../.env.example). Nothing is required to start in development; production needs `SECRET_KEY`',
    'and, with Twilio or LiveKit, `PUBLIC_BASE_URL`. An empty value is the same as unset. A bad value stops start-up',
    'with exit code 78 and a line naming the variable. "(unset)": no default; the description says what that means.',
    '',
  ];
  const row = (d: VariableDoc) => `| \`${d.name}\` | ${d.type} | ${code(d.defaultValue)} |`;
  const seen = new Set<string>();
  for (const group of parseEnvExample(envExample)) {
    const known = group.variables.map((v) => docs.get(v.name)).filter((d): d is VariableDoc => Boolean(d));
    if (!known.length) continue;
    out.push(`## ${known.map((d) => `\`${d.name}\``).join(', ')}`, '');
    const own = known.filter((d) => d.description);
    const text = [group.comment, ...own.map((d) => `\`${d.name}\`: ${d.description}`)].filter(Boolean).join(' ');
    if (text) out.push(text, '');
    out.push('| variable | type | default |', '|---|---|---|', ...known.map(row), '');
    for (const d of known) seen.add(d.name);
  }
  const rest = [...docs.values()].filter((d) => !seen.has(d.name));
  if (rest.length) {
    out.push('## Not in .env.example', '');
    for (const d of rest) out.push(`- \`${d.name}\` (${d.type}, default ${code(d.defaultValue)}): ${d.description ?? ''}`);
    out.push('');
  }
  return out.join('\n');
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  writeFileSync(CONFIG_DOCS_PATH, renderConfigDocs());
  console.log(`wrote ${path.relative(process.cwd(), CONFIG_DOCS_PATH)}`);
}
