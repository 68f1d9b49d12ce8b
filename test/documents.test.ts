// The documents API end to end with the background worker running: upload -> ready -> searchable -> deleted in
// all five formats, bad files refused with stable codes, and every route checked across tenants.
import { readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { makeDocx } from './fixtures/documents.js';
import { bearer, call, multipart, type Session, signup, twoTenants, uniqueEmail, useTestApp, waitFor } from './helpers.js';

const MAX_BYTES = 200_000;
const t = useTestApp({ DOCUMENT_MAX_BYTES: String(MAX_BYTES) });
let a: Session;
let b: Session;
beforeAll(async () => {
  ({ a, b } = await twoTenants(t.app));
});

const upload = (
  token: string,
  file: Buffer | string,
  filename: string,
  title?: string,
  method: 'POST' | 'PUT' = 'POST',
  url = '/api/v1/documents',
) => {
  const form = multipart([{ name: 'file', value: file, filename }, ...(title ? [{ name: 'title', value: title }] : [])]);
  return t.app.inject({ method, url, headers: { ...bearer(token), ...form.headers }, payload: form.payload });
};
const search = async (token: string, query: string, extra: object = {}) => {
  const res = await call(t.app, 'POST', '/api/v1/knowledge/search', token, { query, ...extra });
  expect(res.statusCode, res.body).toBe(200);
  return res.json().results as {
    chunk_id: string;
    document_id: string;
    document_title: string;
    score: number;
    text: string;
    heading_path: string[];
    page: number | null;
  }[];
};
const ready = (token: string, id: string, version = 1) =>
  waitFor(`document ${id} v${version} ready`, async () => {
    const d = (await call(t.app, 'GET', `/api/v1/documents/${id}`, token)).json();
    if (d.status === 'failed') throw new Error(`ingestion failed: ${d.error}`);
    return d.status === 'ready' && d.live_version === version ? d : undefined;
  });
const chunkRows = async (documentId: string) =>
  rowsOf<{ n: number }>(
    await t.deps.database.db.execute(sql`select count(*)::int as n from document_chunks where document_id = ${documentId}`),
  )[0]!.n;

describe('documents: all five formats through HTTP', () => {
  const formats = [
    {
      format: 'text',
      filename: 'hours.txt',
      body: async () => 'Opening hours\n\nThe Sunrise clinic opens at seven thirty on weekdays and closes at noon on Saturdays.',
      query: 'when does the clinic open on weekdays',
      expect: { heading_path: [] as string[], page: null },
    },
    {
      format: 'markdown',
      filename: 'billing.md',
      body: async () =>
        '# Billing\n\n## Refunds\n\nRefunds for cancelled eSIM plans arrive within five business days on the original card.',
      query: 'how long do esim refunds take',
      expect: { heading_path: ['Billing', 'Refunds'], page: null },
    },
    {
      format: 'html',
      filename: 'parking.html',
      body: async () =>
        '<!doctype html><html><body><h1>Visiting</h1><h2>Parking</h2><p>Free parking for patients is in the underground garage on Elm Street.</p><script>var x = "ignored";</script></body></html>',
      query: 'where can patients park',
      expect: { heading_path: ['Visiting', 'Parking'], page: null },
    },
    {
      format: 'pdf',
      filename: 'policy.pdf',
      // Printed from HTML by Chromium: 3 pages, h1/h2 headings (test/fixtures/pdf/handbook.html).
      body: async () => readFileSync(new URL('./fixtures/pdf/handbook.pdf', import.meta.url)),
      query: 'which insurance plans do you accept, Medicaid?',
      expect: { heading_path: ['Sunrise Clinic', 'Insurance'], page: 2 },
    },
    {
      format: 'docx',
      filename: 'vaccines.docx',
      body: async () =>
        makeDocx([
          ['Heading1', 'Travel vaccines'],
          ['Normal', 'Yellow fever vaccination must be given at least ten days before departure.'],
        ]),
      query: 'yellow fever vaccination before departure',
      expect: { heading_path: ['Travel vaccines'], page: null },
    },
  ];

  for (const f of formats) {
    it(`${f.format}: upload (202 pending) -> ready -> searchable with citation -> deleted`, async () => {
      // The name says .bin: the type must come from the content (Markdown is the exception the name decides).
      const filename = f.format === 'markdown' ? f.filename : 'upload.bin';
      const res = await upload(a.access_token, await f.body(), filename, `Doc ${f.format}`);
      expect(res.statusCode, res.body).toBe(202);
      const created = res.json();
      expect(created).toMatchObject({
        title: `Doc ${f.format}`,
        format: f.format,
        status: 'pending',
        version: 1,
        live_version: null,
        chunk_count: 0,
      });

      const doc = await ready(a.access_token, created.id);
      expect(doc.chunk_count).toBeGreaterThan(0);
      expect(doc.progress).toEqual({ chunks_done: doc.chunk_count, chunks_total: doc.chunk_count });
      expect(doc).toMatchObject({ embedding_model: 'local-hash-v2', embedding_dimensions: 384, error: null });
      expect(doc.ready_at).not.toBeNull();

      const [top] = await search(a.access_token, f.query);
      expect(top).toBeDefined();
      expect(top).toMatchObject({ document_id: created.id, document_title: `Doc ${f.format}`, ...f.expect });
      expect(top!.score).toBeGreaterThan(0);

      expect((await call(t.app, 'DELETE', `/api/v1/documents/${created.id}`, a.access_token)).statusCode).toBe(204);
      expect((await call(t.app, 'GET', `/api/v1/documents/${created.id}`, a.access_token)).statusCode).toBe(404);
      expect(await chunkRows(created.id)).toBe(0);
      expect((await search(a.access_token, f.query)).filter((h) => h.document_id === created.id)).toEqual([]);
    });
  }

  it('accepts JSON {title, content} and lists documents newest first with a total', async () => {
    const s = await signup(t.app);
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      const res = await call(t.app, 'POST', '/api/v1/documents', s.access_token, {
        title: `Note ${n}`,
        content: `Note number ${n} about the lobby.`,
      });
      expect(res.statusCode, res.body).toBe(202);
      expect(res.json()).toMatchObject({ format: 'text', filename: null });
      ids.push(res.json().id);
    }
    const page = (await call(t.app, 'GET', '/api/v1/documents?limit=2&offset=0', s.access_token)).json();
    expect(page).toMatchObject({ total: 3, limit: 2, offset: 0 });
    expect(page.items.map((d: { id: string }) => d.id)).toEqual([ids[2], ids[1]]);
    for (const id of ids) await ready(s.access_token, id);
  });
});

describe('documents: bad input', () => {
  const count = async (token: string) => (await call(t.app, 'GET', '/api/v1/documents', token)).json().total as number;

  it('refuses empty, binary, non-DOCX ZIP, damaged ZIP and oversized files at upload with stable codes, storing nothing', async () => {
    const s = await signup(t.app);
    const cases: [Buffer | string, string, number, string][] = [
      [Buffer.alloc(0), 'empty.txt', 422, 'empty_document'],
      ['   \n\n  \t ', 'blank.txt', 422, 'empty_document'],
      [Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0x3e, 0]), 'program.txt', 415, 'unsupported_format'],
      [Buffer.from('PK\u0003\u0004 just a zip with notes.txt inside'), 'notes.zip', 415, 'unsupported_format'],
      [Buffer.concat([Buffer.from('PK\u0003\u0004'), Buffer.from('word/document.xml garbage')]), 'broken.docx', 422, 'corrupt_document'],
      [Buffer.alloc(MAX_BYTES + 1, 'a'), 'big.txt', 413, 'payload_too_large'],
    ];
    for (const [body, name, status, code] of cases) {
      const res = await upload(s.access_token, body, name);
      expect(res.statusCode, `${name}: ${res.body}`).toBe(status);
      expect(res.json().error.code, name).toBe(code);
    }
    const big = await call(t.app, 'POST', '/api/v1/documents', s.access_token, { title: 'Big', content: 'a'.repeat(MAX_BYTES + 1) });
    expect(big.statusCode).toBe(413);
    expect(await count(s.access_token)).toBe(0);
  });

  it('what only extraction can find (a corrupt or encrypted PDF, an HTML page without text) ends failed with its code, once', async () => {
    // These were 422s at upload when the upload extracted the whole file on the request path; extraction now
    // only runs in the worker threads, so they are accepted and fail there with the same code, not retried.
    const s = await signup(t.app);
    const cases: [Buffer | string, string, string][] = [
      ['%PDF-1.4\nthis is not really a pdf\n%%EOF', 'broken.pdf', 'corrupt_document'],
      ['<html><body><script>only();</script></body></html>', 'empty.html', 'empty_document'],
      // Made with `qpdf --encrypt secret-user secret-owner 256` from a one-page makePdf() file.
      [readFileSync(new URL('./fixtures/encrypted.pdf', import.meta.url)), 'secret.pdf', 'encrypted_document'],
    ];
    for (const [body, name, code] of cases) {
      const res = await upload(s.access_token, body, name);
      expect(res.statusCode, `${name}: ${res.body}`).toBe(202);
      const doc = await waitFor(`${name} failed`, async () => {
        const d = (await call(t.app, 'GET', `/api/v1/documents/${res.json().id}`, s.access_token)).json();
        return d.status === 'failed' ? d : undefined;
      });
      expect(doc.error, name).toMatch(new RegExp(`^${code}: `));
      expect(doc.attempts, name).toBe(1);
    }
  });

  it('refuses malformed requests: missing file, unknown parts, bad JSON fields, wrong content type', async () => {
    const s = await signup(t.app);
    const post = (form: ReturnType<typeof multipart>) =>
      t.app.inject({
        method: 'POST',
        url: '/api/v1/documents',
        headers: { ...bearer(s.access_token), ...form.headers },
        payload: form.payload,
      });
    let res = await post(multipart([{ name: 'title', value: 'no file' }]));
    expect([res.statusCode, res.json().error.details]).toEqual([422, [{ field: 'body.file', message: 'is required' }]]);
    res = await post(multipart([{ name: 'document', value: 'x', filename: 'x.txt' }]));
    expect(res.statusCode).toBe(422);
    res = await post(
      multipart([
        { name: 'file', value: 'hello there', filename: 'a.txt' },
        { name: 'colour', value: 'red' },
      ]),
    );
    expect(res.json().error.details[0].field).toBe('body.colour');
    res = await post(
      multipart([
        { name: 'file', value: 'hello there', filename: 'a.txt' },
        { name: 'title', value: '   ' },
      ]),
    );
    expect(res.statusCode).toBe(422);
    res = await call(t.app, 'POST', '/api/v1/documents', s.access_token, { content: 'no title' });
    expect([res.statusCode, res.json().error.details[0].field]).toEqual([422, 'body.title']);
    res = await call(t.app, 'POST', '/api/v1/documents', s.access_token, { title: 'x', content: 'y', extra: 1 });
    expect(res.statusCode).toBe(422);
    res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/documents',
      headers: { ...bearer(s.access_token), 'content-type': 'text/plain' },
      payload: 'hi',
    });
    expect([res.statusCode, res.json().error.code]).toEqual([415, 'unsupported_media_type']);
    res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/documents',
      headers: { ...bearer(s.access_token), 'content-type': 'multipart/form-data' },
      payload: 'no boundary',
    });
    expect(res.statusCode).toBeGreaterThanOrEqual(400);
    expect(res.statusCode).toBeLessThan(500);
    expect(await count(s.access_token)).toBe(0);
  });

  it('search validates its body', async () => {
    for (const body of [
      {},
      { query: '' },
      { query: 'x', top_k: 0 },
      { query: 'x', top_k: 51 },
      { query: 'x', min_score: 2 },
      { query: 'x', mode: 'magic' },
    ]) {
      const res = await call(t.app, 'POST', '/api/v1/knowledge/search', a.access_token, body);
      expect(res.statusCode, JSON.stringify(body)).toBe(422);
    }
  });
});

describe('documents: access and tenant isolation', () => {
  it('members read but cannot write; API keys can write', async () => {
    const member = { email: uniqueEmail('member'), password: 'correct horse battery' };
    expect((await call(t.app, 'POST', '/api/v1/users', a.access_token, { ...member, role: 'member' })).statusCode).toBe(201);
    const login = (await t.app.inject({ method: 'POST', url: '/api/v1/auth/login', payload: member })).json();
    const denied = await call(t.app, 'POST', '/api/v1/documents', login.access_token, { title: 'x', content: 'member upload' });
    expect([denied.statusCode, denied.json().error.code]).toEqual([403, 'forbidden']);
    expect((await call(t.app, 'GET', '/api/v1/documents', login.access_token)).statusCode).toBe(200);
    expect((await call(t.app, 'POST', '/api/v1/knowledge/search', login.access_token, { query: 'anything' })).statusCode).toBe(200);

    const key = (await call(t.app, 'POST', '/api/v1/api-keys', a.access_token, { name: 'uploader' })).json().key;
    const viaKey = await call(t.app, 'POST', '/api/v1/documents', key, { title: 'From the key', content: 'Uploaded with an API key.' });
    expect(viaKey.statusCode).toBe(202);
    await ready(a.access_token, viaKey.json().id);
    expect((await call(t.app, 'DELETE', `/api/v1/documents/${viaKey.json().id}`, key)).statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: '/api/v1/documents' })).statusCode).toBe(401);
  });

  it('another tenant cannot see, search, replace or delete a document: 404 and no hits', async () => {
    const secret = 'The staff door code of tenant A is quartz falcon 4471.';
    const created = (await call(t.app, 'POST', '/api/v1/documents', a.access_token, { title: 'A secret', content: secret })).json();
    await ready(a.access_token, created.id);
    // B holds an unrelated document so its search has something to rank.
    const decoy = (
      await call(t.app, 'POST', '/api/v1/documents', b.access_token, { title: 'B notes', content: 'Tenant B sells eSIM plans for Japan.' })
    ).json();
    await ready(b.access_token, decoy.id);

    const url = `/api/v1/documents/${created.id}`;
    expect((await call(t.app, 'GET', url, b.access_token)).statusCode).toBe(404);
    expect((await call(t.app, 'PUT', url, b.access_token, { content: 'overwritten by B' })).statusCode).toBe(404);
    expect((await call(t.app, 'DELETE', url, b.access_token)).statusCode).toBe(404);
    const form = multipart([{ name: 'file', value: 'overwritten by B', filename: 'b.txt' }]);
    expect(
      (await t.app.inject({ method: 'PUT', url, headers: { ...bearer(b.access_token), ...form.headers }, payload: form.payload }))
        .statusCode,
    ).toBe(404);
    const listB = (await call(t.app, 'GET', '/api/v1/documents?limit=200', b.access_token)).json();
    expect(listB.items.map((d: { id: string }) => d.id)).not.toContain(created.id);
    for (const mode of ['hybrid', 'vector', 'fulltext']) {
      const hits = await search(b.access_token, 'staff door code quartz falcon', { mode, min_score: 0 });
      expect(
        hits.map((h) => h.document_id),
        mode,
      ).not.toContain(created.id);
    }
    // A still has it, unchanged.
    const still = await ready(a.access_token, created.id);
    expect(still).toMatchObject({ version: 1, title: 'A secret' });
    expect((await search(a.access_token, 'staff door code quartz falcon'))[0]?.text).toContain('quartz falcon');
  });
});
