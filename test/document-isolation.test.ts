// Hostile and heavy documents against the running service (issue 16): each is refused at upload with its code or
// ends `failed`/`ready`, the process survives, its RSS stays bounded, and the main event loop keeps answering
// /health while the document is processed (all document work runs in the worker threads of DocumentPool).
import { createHash } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql } from 'drizzle-orm';
import { beforeAll, describe, expect, it } from 'vitest';
import { rowsOf } from '../src/db/client.js';
import { DOCUMENT_PART_BYTES } from '../src/db/document-parts.js';
import { bigText, bracketBombMarkdown, deepHtml, paragraphBombDocx } from './fixtures/documents.js';
import { bearer, call, multipart, type Session, signup, useTestApp, waitFor } from './helpers.js';

// The default limits, except a 24 MB upload limit so the 19 MB text fits whatever the default becomes, and 5,000
// chunks a document: the 19 MB text (~15,000 chunks) then fails after its extraction and chunking, the work that
// froze the service for 42 s, instead of spending minutes storing vectors (measured: 228 s on a busy machine, the
// event loop never held past the bound; `npm run bench:isolation` runs it to ready).
const t = useTestApp({ DOCUMENT_MAX_BYTES: String(24 * 1024 * 1024), DOCUMENT_MAX_CHUNKS: '5000' });
let s: Session;
beforeAll(async () => {
  s = await signup(t.app);
});

const upload = (file: Buffer, filename: string) => {
  const form = multipart([{ name: 'file', value: file, filename }]);
  return t.app.inject({
    method: 'POST',
    url: '/api/v1/documents',
    headers: { ...bearer(s.access_token), ...form.headers },
    payload: form.payload,
  });
};

/** Runs `work` while sampling /health and the event loop; the largest delays and RSS seen. */
async function watched<T>(work: () => Promise<T>): Promise<{ result: T; healthMaxMs: number; loopMaxMs: number; rssMaxMb: number }> {
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let healthMaxMs = 0;
  let rssMax = process.memoryUsage.rss();
  let done = false;
  const probe = (async () => {
    while (!done) {
      const started = performance.now();
      const res = await t.app.inject({ method: 'GET', url: '/health' });
      expect(res.statusCode).toBe(200);
      healthMaxMs = Math.max(healthMaxMs, performance.now() - started);
      rssMax = Math.max(rssMax, process.memoryUsage.rss());
      await sleep(50);
    }
  })();
  try {
    const result = await work();
    return { result, healthMaxMs, loopMaxMs: loop.max / 1e6, rssMaxMb: rssMax / 1024 / 1024 };
  } finally {
    done = true;
    await probe;
    loop.disable();
  }
}

/** Waits for the uploaded document to end ready or failed, as the API shows it. */
async function processed(id: string): Promise<{ status: string; error: string | null; attempts: number }> {
  return waitFor(
    `document ${id} processed`,
    async () => {
      const d = (await call(t.app, 'GET', `/api/v1/documents/${id}`, s.access_token)).json();
      return d.status === 'ready' || d.status === 'failed' ? d : undefined;
    },
    240_000,
  );
}

/** Uploads (202 expected), then watches the service while the document is processed. */
async function ingest(file: Buffer, filename: string) {
  const res = await upload(file, filename);
  expect(res.statusCode, res.body).toBe(202);
  const r = await watched(() => processed(res.json().id));
  return { ...r, doc: r.result };
}

// The bound: 1 s p100 for /health, and the event loop never held longer, even on a busy 2-core machine.
// Measured with the main thread's remaining work (database statements of tens of milliseconds, the test's own
// multipart parse of 19 MB in app.inject): under 0.3 s; before, one statement storing a 19 MB file held it 0.8 to
// 3 s, and extraction on the main thread 10 to 150 s. `npm run bench:isolation` reports the real numbers.
const LOOP_BOUND_MS = 1_000;
const RSS_BOUND_MB = 1_536;

describe('hostile documents do not hurt the service', () => {
  it('the 3-million-paragraph DOCX (135 MB of XML) is refused at upload from its ZIP directory alone', async () => {
    const bomb = await paragraphBombDocx(3_000_000);
    expect(bomb.length).toBeLessThan(1_000_000);
    const r = await watched(() => upload(bomb, 'bomb.docx'));
    expect(r.result.statusCode).toBe(422);
    expect(r.result.json().error).toMatchObject({
      code: 'document_too_complex',
      message: expect.stringMatching(/declares \d+ bytes uncompressed/),
    });
    expect(r.loopMaxMs).toBeLessThan(LOOP_BOUND_MS);
    expect(r.rssMaxMb).toBeLessThan(RSS_BOUND_MB);
  });

  it('2.2 million paragraphs (under the declared-size limit) fail in the worker on the XML element limit, once', async () => {
    const r = await ingest(await paragraphBombDocx(2_200_000), 'bomb2.docx');
    expect(r.doc).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.stringMatching(/^document_too_complex: The DOCX has more than \d+ XML elements/),
    });
    expect(r.loopMaxMs).toBeLessThan(LOOP_BOUND_MS);
    expect(r.rssMaxMb).toBeLessThan(RSS_BOUND_MB);
  });

  it('a DOCX whose ZIP directory lies about its sizes fails in the worker, once, with the reason', async () => {
    // The directory says word/document.xml is 1,000 bytes; it inflates to ~9 MB.
    const liar = await paragraphBombDocx(200_000, 1_000);
    const r = await ingest(liar, 'liar.docx');
    expect(r.doc).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.stringMatching(/^document_too_complex: .*inflates to more than/),
    });
    expect(r.loopMaxMs).toBeLessThan(LOOP_BOUND_MS);
  });

  it('HTML nested 20,000 deep fails with a readable reason instead of overflowing the stack', async () => {
    const r = await ingest(deepHtml(20_000), 'deep.html');
    expect(r.doc).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.stringMatching(/^document_too_complex: The HTML is nested deeper/),
    });
    expect(r.loopMaxMs).toBeLessThan(LOOP_BOUND_MS);
  });

  it('a Markdown bracket bomb (1 MB of unclosed [ and ![) is ingested without stalling anything', async () => {
    const r = await ingest(bracketBombMarkdown(150_000), 'bomb.md');
    expect(r.doc).toMatchObject({ status: 'ready' });
    expect(r.loopMaxMs).toBeLessThan(LOOP_BOUND_MS);
    expect(r.healthMaxMs).toBeLessThan(LOOP_BOUND_MS);
    // Only a hang must fail here: with 2 cores busy elsewhere the ingestion took over 30 s (the default).
  }, 300_000);

  it('a 19 MB plain-text document is stored, extracted and chunked while /health keeps answering; past the chunk limit it fails once', async () => {
    const file = bigText(19 * 1024 * 1024);
    // Watched from the upload on: storing the file is on the main thread's database too.
    const r = await watched(async () => {
      const res = await upload(file, 'big.txt');
      expect(res.statusCode, res.body).toBe(202);
      return processed(res.json().id);
    });
    expect(r.result).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: expect.stringMatching(/^document_too_complex: The document makes \d+ chunks \(the limit is 5000\)/),
    });
    expect(r.loopMaxMs).toBeLessThan(LOOP_BOUND_MS);
    expect(r.healthMaxMs).toBeLessThan(LOOP_BOUND_MS);
    expect(r.rssMaxMb).toBeLessThan(RSS_BOUND_MB);
  }, 300_000);

  it('a file is stored in parts of at most DOCUMENT_PART_BYTES, whole, and replaced whole', async () => {
    const parts = async (id: string) =>
      rowsOf<{ part: number; n: number; sha: string }>(
        await t.deps.database.db.execute(sql`
          select part, octet_length(bytes) as n,
                 (select encode(sha256(string_agg(bytes, ''::bytea order by part)), 'hex') from document_parts where document_id = ${id}) as sha
          from document_parts where document_id = ${id} order by part`),
      );
    const file = bigText(3 * DOCUMENT_PART_BYTES + 1_000);
    const res = await upload(file, 'parts.txt');
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json().id as string;
    const stored = await parts(id);
    expect(stored.map((p) => p.part)).toEqual([0, 1, 2, 3]);
    expect(Math.max(...stored.map((p) => p.n))).toBe(DOCUMENT_PART_BYTES);
    expect(stored[0]!.sha).toBe(createHash('sha256').update(file).digest('hex'));
    expect(await processed(id)).toMatchObject({ status: 'ready' });

    const smaller = bigText(DOCUMENT_PART_BYTES / 2);
    const form = multipart([{ name: 'file', value: smaller, filename: 'parts.txt' }]);
    const put = await t.app.inject({
      method: 'PUT',
      url: `/api/v1/documents/${id}`,
      headers: { ...bearer(s.access_token), ...form.headers },
      payload: form.payload,
    });
    expect(put.statusCode, put.body).toBe(202);
    const replaced = await parts(id);
    expect(replaced.map((p) => p.part)).toEqual([0]);
    expect(replaced[0]!.sha).toBe(createHash('sha256').update(smaller).digest('hex'));
    expect(await processed(id)).toMatchObject({ status: 'ready' });
  }, 120_000);
});
