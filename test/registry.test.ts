// The provider registry turns a tenant's settings and knowledge into engines: here, the local STT's language model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PocketsphinxStt } from '../src/voice/stt/pocketsphinx-stt.js';
import { buildTestApp, call, signup, type TestApp, waitFor } from './helpers.js';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ INGEST_CONCURRENCY: '1' });
});
afterAll(async () => t.close());

async function localStt(tenantId: string): Promise<PocketsphinxStt> {
  const { stt } = await t.deps.providers.voiceFor(tenantId, { sampleRate: 8000 });
  expect(stt).toBeInstanceOf(PocketsphinxStt);
  return stt as PocketsphinxStt;
}

async function upload(token: string, title: string, content: string): Promise<string> {
  const doc = await call(t.app, 'POST', '/api/v1/documents', token, { title, content });
  expect(doc.statusCode, doc.body).toBe(202);
  const id: string = doc.json().id;
  await waitFor('document ready', async () => ((await call(t.app, 'GET', `/api/v1/documents/${id}`, token)).json().status === 'ready' ? true : undefined));
  return id;
}

describe('local speech-to-text language model', () => {
  it('is built from the tenant’s live documents, follows their changes, and is the general model without any', async () => {
    const s = await signup(t.app);
    expect((await localStt(s.tenant.id)).mode).toBe('general');

    await upload(s.access_token, 'Parking', 'Free parking is behind the clinic on Elm Street. Therapy sessions last forty minutes.');
    const first = await localStt(s.tenant.id);
    expect(first.mode).toBe('domain');
    // Every word of this document is in the dictionary; a made-up word added next is reported as unknown: proof the model is built from the corpus.
    expect(first.outOfVocabulary).toEqual([]);
    const id = await upload(s.access_token, 'Names', 'Ask for Doctor Zyxwarble at reception.');
    expect((await localStt(s.tenant.id)).outOfVocabulary).toContain('zyxwarble');

    // Another tenant's knowledge never reaches this tenant's model.
    const other = await signup(t.app);
    await upload(other.access_token, 'Secret', 'The vault code word is Quuxtrombone.');
    expect((await localStt(s.tenant.id)).outOfVocabulary).not.toContain('quuxtrombone');

    // A deleted document leaves the model at the next call.
    expect((await call(t.app, 'DELETE', `/api/v1/documents/${id}`, s.access_token)).statusCode).toBe(204);
    expect((await localStt(s.tenant.id)).outOfVocabulary).not.toContain('zyxwarble');

    // The tenant can ask for the general model.
    const put = await call(t.app, 'PUT', '/api/v1/settings/tenant', s.access_token, { providers: { stt: { local_model: 'general' } } });
    expect(put.statusCode, put.body).toBe(200);
    expect((await localStt(s.tenant.id)).mode).toBe('general');
  });
});
