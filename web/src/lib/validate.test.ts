import { describe, expect, it } from 'vitest';
import { checkToolParameters } from './tool-schema';
import { validateAgent, validateCredentials, type AgentForm } from './validate';

const agent: AgentForm = {
  agent_name: 'Ava',
  language: 'en-US',
  greeting: '',
  system_prompt: '',
  transfer_number: '',
  endpointing_ms: 700,
  min_interruption_ms: 400,
  silence_prompt_s: 12,
  max_duration_s: 1800,
};

describe('agent form validation', () => {
  it('accepts the defaults', () => expect(validateAgent(agent)).toEqual({}));

  it('puts each problem on its field, with the API’s field names', () => {
    const e = validateAgent({
      ...agent,
      agent_name: ' ',
      language: 'English',
      transfer_number: '0123',
      endpointing_ms: 50,
      max_duration_s: Number.NaN,
    });
    expect(Object.keys(e).sort()).toEqual(['agent_name', 'call.endpointing_ms', 'call.max_duration_s', 'call.transfer_number', 'language']);
    expect(e['call.transfer_number']).toMatch(/E\.164/);
  });
});

describe('credentials', () => {
  it('signup needs an email, 8 characters and a business name', () => {
    expect(validateCredentials({ email: 'x', password: 'short', tenant_name: '' }, 'signup')).toEqual({
      email: 'Enter a valid email address',
      password: 'Use at least 8 characters',
      tenant_name: 'Name your business',
    });
    expect(validateCredentials({ email: 'a@b.co', password: 'x', tenant_name: '' }, 'login')).toEqual({});
  });
});

describe('tool parameters', () => {
  it('names the place of each problem in the schema', () => {
    const { value, issues } = checkToolParameters(
      JSON.stringify({
        type: 'object',
        properties: { date: { type: 'strin' }, tags: { type: 'array' }, n: { type: 'integer', format: 'x' } },
        required: ['x'],
      }),
    );
    expect(value).toBeUndefined();
    expect(issues.map((i) => i.path)).toEqual(['properties.date.type', 'properties.tags.items', 'properties.n.format', 'required.0']);
  });

  it('says when the text is not JSON, and accepts a good schema', () => {
    expect(checkToolParameters('{type: object}').issues[0]!.message).toMatch(/not valid JSON/);
    const ok = checkToolParameters('{"type":"object","properties":{"d":{"type":"string","enum":["a"]}},"required":["d"]}');
    expect(ok.issues).toEqual([]);
    expect(ok.value).toBeDefined();
  });

  it('refuses schemas nested more than 5 levels', () => {
    let node: object = { type: 'string' };
    for (let i = 0; i < 6; i++) node = { type: 'array', items: node };
    const { issues } = checkToolParameters(JSON.stringify({ type: 'object', properties: { deep: node } }));
    expect(issues.some((i) => /5 levels/.test(i.message))).toBe(true);
  });
});
