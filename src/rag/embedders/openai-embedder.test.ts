import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeOpenAI } from '../../../test/fakes/openai.js';
import { ProviderError } from '../../lib/provider-error.js';
import { cosine } from './embedder.js';
import { LocalEmbedder } from './local-embedder.js';
import { OpenAIEmbedder } from './openai-embedder.js';

let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await new FakeOpenAI().start();
});
afterAll(() => fake.stop());

const embedder = (o: Partial<ConstructorParameters<typeof OpenAIEmbedder>[0]> = {}) =>
  new OpenAIEmbedder({ apiKey: fake.apiKey, baseURL: fake.baseURL, maxRetries: 2, ...o });

describe('OpenAIEmbedder against the fake OpenAI API (official SDK)', () => {
  it('embeds a batch in order, decoding the base64 float32 the SDK asks for by default', async () => {
    const texts = ['clinic opening hours', 'eSIM top-up', 'parking behind the building'];
    const vs = await embedder().embed(texts);
    expect(fake.requests.at(-1)).toMatchObject({ model: 'text-embedding-3-small', encoding_format: 'base64', input: texts });
    expect(vs.map((v) => v.length)).toEqual([1536, 1536, 1536]);
    const local = new LocalEmbedder(1536);
    texts.forEach((t, i) => expect(cosine(vs[i]!, local.embedOne(t))).toBeCloseTo(1, 5));
  });

  it('sends dimensions for text-embedding-3 models and refuses it for ada', async () => {
    const [v] = await embedder({ dimensions: 256 }).embed(['hello world']);
    expect(v).toHaveLength(256);
    expect(fake.requests.at(-1)).toMatchObject({ dimensions: 256 });
    expect(() => embedder({ model: 'text-embedding-ada-002', dimensions: 256 })).toThrow(/dimensions/);
  });

  it('retries 429 and 5xx honouring Retry-After, then succeeds', async () => {
    fake.failNext({ status: 429, retryAfterS: 1 }, { status: 503 });
    const before = fake.requests.length;
    const t0 = Date.now();
    const [v] = await embedder().embed(['after a rate limit']);
    expect(v).toHaveLength(1536);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
    expect(fake.requests.length).toBe(before + 1);
  });

  it('a bad key is a permanent ProviderError; exhausted retries are retryable ones', async () => {
    const bad = new OpenAIEmbedder({ apiKey: 'sk-wrong', baseURL: fake.baseURL, maxRetries: 0 });
    const err = await bad.embed(['x']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({ status: 401, retryable: false });
    fake.failNext({ status: 500 }, { status: 500 });
    const err2 = await embedder({ maxRetries: 1 })
      .embed(['x'])
      .catch((e: unknown) => e);
    expect(err2).toMatchObject({ status: 500, retryable: true });
    fake.failNext({ status: 0, drop: true });
    const err3 = await embedder({ maxRetries: 0 })
      .embed(['x'])
      .catch((e: unknown) => e);
    expect(err3).toMatchObject({ retryable: true });
  });

  it('the fake rejects what OpenAI rejects', async () => {
    const post = (body: unknown, key = fake.apiKey) =>
      fetch(`${fake.baseURL}/embeddings`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const cases: [unknown, number, string | null][] = [
      [{ model: 'text-embedding-3-small', input: '' }, 400, 'input'],
      [{ model: 'text-embedding-3-small', input: [] }, 400, 'input'],
      [{ model: 'no-such-model', input: 'x' }, 404, null],
      [{ model: 'text-embedding-3-small', input: 'x', dimensions: 5000 }, 400, 'dimensions'],
      [{ model: 'text-embedding-ada-002', input: 'x', dimensions: 64 }, 400, 'dimensions'],
      [{ model: 'text-embedding-3-small', input: 'x', encoding_format: 'hex' }, 400, 'encoding_format'],
    ];
    for (const [body, status, param] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      const json = (await res.json()) as { error: { param: string | null; type: string } };
      expect(json.error.param).toBe(param);
      expect(json.error.type).toBe('invalid_request_error');
    }
    expect((await post({ model: 'text-embedding-3-small', input: 'x' }, 'sk-other')).status).toBe(401);
  });
});
