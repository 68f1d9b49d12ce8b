// docs/configuration.md is generated from the Zod config schema and .env.example's comments: it must be current,
// and .env.example must list every variable with its default (or empty when it has none).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import {
  CONFIG_DOCS_PATH,
  describeSchema,
  ENV_EXAMPLE_PATH,
  parseEnvExample,
  renderConfigDocs,
  variableDocs,
} from '../scripts/config-docs.js';

describe('configuration reference', () => {
  it('docs/configuration.md is current (else run `npm run docs:config`)', () => {
    expect(readFileSync(CONFIG_DOCS_PATH, 'utf8'), 'docs/configuration.md is stale: run `npm run docs:config`').toBe(renderConfigDocs());
  });

  it('.env.example lists every variable once, with its default as the value (empty when it has none)', () => {
    const listed = parseEnvExample(readFileSync(ENV_EXAMPLE_PATH, 'utf8')).flatMap((g) => g.variables);
    const docs = variableDocs();
    expect(listed.map((v) => v.name).sort()).toEqual(docs.map((d) => d.name).sort());
    const values = Object.fromEntries(listed.map((v) => [v.name, v.value]));
    const defaults = Object.fromEntries(docs.map((d) => [d.name, d.defaultValue ?? '']));
    expect(values).toEqual(defaults);
    // Every variable is described, by a comment above it or its schema's description.
    const undescribed = parseEnvExample(readFileSync(ENV_EXAMPLE_PATH, 'utf8'))
      .filter((g) => !g.comment)
      .flatMap((g) => g.variables.map((v) => v.name))
      .filter((name) => !docs.find((d) => d.name === name)?.description);
    expect(undescribed).toEqual([]);
  });

  it('reads types and defaults through the wrappers config.ts uses', () => {
    const pre = <T extends z.ZodType>(s: T) => z.preprocess((v) => v, s);
    expect(describeSchema(pre(z.coerce.number().int().min(1).max(9).default(3)))).toEqual({ type: 'integer 1..9', defaultValue: '3' });
    expect(describeSchema(pre(z.enum(['a', 'b']).default('b')))).toEqual({ type: 'one of `a`, `b`', defaultValue: 'b' });
    expect(describeSchema(pre(z.string().optional()).pipe(z.string().min(32).optional()))).toEqual({
      type: 'string, at least 32 characters',
      defaultValue: undefined,
    });
    expect(describeSchema(pre(z.enum(['true', 'false']).optional().transform(Boolean))).type).toBe('boolean (true/false)');
    const groups = parseEnvExample('# Header.\n\n# About A and B.\nA=1\nB=\nC=x\n# About D.\nD=\n');
    expect(groups).toEqual([
      {
        comment: 'About A and B.',
        variables: [
          { name: 'A', value: '1' },
          { name: 'B', value: '' },
          { name: 'C', value: 'x' },
        ],
      },
      { comment: 'About D.', variables: [{ name: 'D', value: '' }] },
    ]);
  });
});
