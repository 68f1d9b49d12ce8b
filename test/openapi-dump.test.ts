// The console's API types come from the committed web/openapi.json (npm run openapi, then npm run web:types): it
// must be the document the code serves, or the console is typed against an API that is not there.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { useTestApp } from './helpers.js';

const t = useTestApp();

describe('web/openapi.json', () => {
  it('is the OpenAPI document the app serves (if not: npm run openapi && npm run web:types, and commit both)', async () => {
    const committed: unknown = JSON.parse(readFileSync('web/openapi.json', 'utf8'));
    const served: unknown = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(committed, 'web/openapi.json is stale: run npm run openapi && npm run web:types').toEqual(served);
  });
});
