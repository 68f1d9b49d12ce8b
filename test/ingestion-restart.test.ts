// The real service as a process, killed (SIGKILL, no shutdown) in the middle of ingesting a large document on
// the embedded database: after a restart the document ends `ready`, with every chunk exactly once, and the
// work already stored is not redone.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PGLITE_EXTENSIONS } from '../src/db/client.js';
import { FakeOpenAI } from './fakes/openai.js';
import { seedDataDir } from './db-snapshot.js';

const main = ['--import', 'tsx', 'src/main.ts'];
let fake: FakeOpenAI;
beforeAll(async () => {
  fake = await new FakeOpenAI().start();
  fake.delayMs = 250;
});
afterAll(() => fake.stop());

function startService(dataDir: string, port: number): { child: ChildProcess; base: string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, main, {
    env: { PATH: process.env.PATH ?? '', DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn', OPENAI_BASE_URL: fake.baseURL },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return { child, base: `http://127.0.0.1:${port}`, exited: new Promise((r) => child.once('exit', (code) => r(code))) };
}

async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

describe('ingestion survives a crash', () => {
  it('SIGKILL mid-document, restart: the document ends ready, no chunk twice, finished batches kept', async () => {
    const dataDir = await seedDataDir(mkdtempSync(path.join(tmpdir(), 'va-ingest-crash-')));
    const port = 20_000 + Math.floor(Math.random() * 1000);
    const first = startService(dataDir, port);
    await until('service up', async () => ((await fetch(`${first.base}/health`)).ok ? true : undefined));

    const json = (token?: string) => ({ 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) });
    const signup = await (
      await fetch(`${first.base}/api/v1/auth/signup`, {
        method: 'POST',
        headers: json(),
        body: JSON.stringify({ email: 'crash@example.com', password: 'correct horse battery', tenant_name: 'Crash Co' }),
      })
    ).json();
    const token = signup.access_token as string;
    // A slow provider (250 ms per batch of 128) makes the document take seconds to ingest.
    await fetch(`${first.base}/api/v1/settings/tenant`, {
      method: 'PUT',
      headers: json(token),
      body: JSON.stringify({ providers: { embeddings: { provider: 'openai', dimensions: 256 } }, provider_keys: { openai: fake.apiKey } }),
    });
    const content = Array.from(
      { length: 700 },
      (_, i) => `# Topic ${i}\n\nEntry ${i}: the archive holds record number ${i * 7} in drawer ${i % 13}.`,
    ).join('\n\n');
    const created = await (
      await fetch(`${first.base}/api/v1/documents`, {
        method: 'POST',
        headers: json(token),
        body: JSON.stringify({ title: 'Archive', content }),
      })
    ).json();
    const docUrl = `/api/v1/documents/${created.id}`;

    const mid = await until('first batches stored', async () => {
      const d = await (await fetch(`${first.base}${docUrl}`, { headers: json(token) })).json();
      return d.status === 'processing' && d.progress.chunks_done >= 256 ? d : undefined;
    });
    first.child.kill('SIGKILL');
    await first.exited;
    expect(mid.progress.chunks_total).toBe(700);
    const sentBeforeCrash = fake.requests.reduce((n, r) => n + (r.input as string[]).length, 0);

    const second = startService(dataDir, port + 1);
    try {
      const done = await until('document ready after restart', async () => {
        const d = await (await fetch(`${second.base}${docUrl}`, { headers: json(token) })).json();
        return d.status === 'ready' ? d : undefined;
      });
      expect(done).toMatchObject({ chunk_count: 700, live_version: 1, progress: { chunks_done: 700, chunks_total: 700 }, error: null });
      const sentTotal = fake.requests.reduce((n, r) => n + (r.input as string[]).length, 0);
      // Resumed, not restarted: at most one batch in flight at the crash is embedded twice.
      expect(sentTotal).toBeLessThanOrEqual(700 + 128);
      expect(sentBeforeCrash).toBeGreaterThanOrEqual(256);
      const hits = await (
        await fetch(`${second.base}/api/v1/knowledge/search`, {
          method: 'POST',
          headers: json(token),
          body: JSON.stringify({ query: 'record number 4830' }),
        })
      ).json();
      expect(hits.results[0].text).toContain('record number 4830');
    } finally {
      second.child.kill('SIGTERM');
      await second.exited;
    }
    // Straight from the data folder: every (version, chunk_index) exactly once.
    const pg = await PGlite.create({ dataDir: path.join(dataDir, 'pglite'), extensions: PGLITE_EXTENSIONS });
    try {
      const { rows } = await pg.query<{ total: number; distinct_idx: number; min: number; max: number }>(
        'select count(*)::int as total, count(distinct chunk_index)::int as distinct_idx, min(chunk_index) as min, max(chunk_index) as max from document_chunks where document_id = $1',
        [created.id],
      );
      expect(rows[0]).toEqual({ total: 700, distinct_idx: 700, min: 0, max: 699 });
    } finally {
      await pg.close();
    }
  }, 120_000);
});
