// The README's copy-paste settings bodies (one per cloud provider) are valid PUT /api/v1/settings/tenant bodies:
// each is parsed with the settings' own patch schema (strict: an unknown or misspelled key fails), so the README
// cannot drift from the schema.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tenantSettingsPatchSchema } from '../src/services/settings-schema.js';

const readme = readFileSync(path.resolve(import.meta.dirname, '..', 'README.md'), 'utf8');
const section = readme.slice(readme.indexOf('### Cloud providers'), readme.indexOf('A cloud engine that fails'));
const bodies = [...section.matchAll(/```json\n([\s\S]*?)\n```/g)].map((m) => m[1]!);

describe('README: a settings body for each cloud provider', () => {
  it('has one body per provider: OpenAI, Anthropic, Deepgram, ElevenLabs, an OpenAI-compatible server', () => {
    expect(section.length).toBeGreaterThan(0);
    const named = bodies.map((b) => Object.keys((JSON.parse(b) as { provider_keys: object }).provider_keys)[0]);
    expect(named).toEqual(['openai', 'anthropic', 'deepgram', 'elevenlabs', 'openai_compatible']);
  });

  it.each(bodies.map((b, i) => [i, b] as const))('body %i is a valid settings PUT body, naming the engine its key is for', (_i, body) => {
    const parsed = tenantSettingsPatchSchema.safeParse(JSON.parse(body));
    expect(parsed.success, JSON.stringify(parsed.error?.issues)).toBe(true);
    const json = JSON.parse(body) as { providers: Record<string, { provider: string }>; provider_keys: Record<string, string> };
    const key = Object.keys(json.provider_keys)[0];
    expect(Object.values(json.providers).every((stage) => stage.provider === key)).toBe(true);
  });
});
