// Recording downloads stream from disk (issue 16, finding 5): a recording larger than 2 GiB (a sparse file, small on
// disk) is served with its Content-Length and byte ranges (206 + Content-Range, 416 outside it), and a few hundred
// MB downloaded whole do not grow the process's memory by their size.
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRange } from '../src/http/routes/recordings.js';
import { LocalRecordingStore } from '../src/storage/local-store.js';
import { buildTestApp, type TestApp } from './helpers.js';

const GiB = 1024 ** 3;
const HUGE = 3 * GiB + 123; // past 2 GiB: readFile would throw ERR_FS_FILE_TOO_LARGE
const LARGE = 400 * 1024 * 1024;
const TENANT = '7d1c2b4e-0000-4000-8000-00000000000a';

let t: TestApp;
let dir: string;
let store: LocalRecordingStore;
let base: string;

/** A sparse file of `size` bytes with `marker` written at `at`: nothing but the marker takes disk space. */
async function sparse(key: string, size: number, marker?: { at: number; text: string }): Promise<void> {
  const file = path.join(dir, 'recordings', key);
  await mkdir(path.dirname(file), { recursive: true });
  const fh = await open(file, 'w');
  await fh.truncate(size);
  if (marker) await fh.write(marker.text, marker.at);
  await fh.close();
}

const urlOf = async (key: string) => `${base}${await store.signedUrl(key, 60_000)}`;

beforeAll(async () => {
  t = await buildTestApp();
  dir = await mkdtemp(path.join(tmpdir(), 'recording-download-'));
  // A store on disk (the test app's own keeps recordings in memory); the download route serves whichever is configured.
  store = new LocalRecordingStore({ dir: path.join(dir, 'recordings'), secretKey: 'download-test-secret-key-0123456789-abcdef' });
  t.deps.recordings = store;
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  const addr = t.app.server.address();
  base = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
});
afterAll(async () => {
  // The dropped download's socket may still be open: closing the app must not wait for it.
  t.app.server.closeAllConnections();
  await t.close();
  await rm(dir, { recursive: true, force: true });
});

describe('recording downloads', () => {
  it('serves a recording larger than 2 GiB: its length, and byte ranges anywhere in it', async () => {
    const key = `${TENANT}/huge.wav`;
    await sparse(key, HUGE, { at: HUGE - 5, text: 'tail!' });
    const url = await urlOf(key);

    const tail = await fetch(url, { headers: { range: 'bytes=-5' } });
    expect([tail.status, tail.headers.get('content-range'), tail.headers.get('content-length'), await tail.text()]).toEqual([
      206,
      `bytes ${HUGE - 5}-${HUGE - 1}/${HUGE}`,
      '5',
      'tail!',
    ]);
    const middle = await fetch(url, { headers: { range: `bytes=${2.5 * GiB}-${2.5 * GiB + 9}` } });
    expect([middle.status, middle.headers.get('content-range'), (await middle.arrayBuffer()).byteLength]).toEqual([
      206,
      `bytes ${2.5 * GiB}-${2.5 * GiB + 9}/${HUGE}`,
      10,
    ]);
    const open = await fetch(url, { headers: { range: `bytes=${HUGE - 2}-` } });
    expect([open.status, open.headers.get('content-range'), await open.text()]).toEqual([
      206,
      `bytes ${HUGE - 2}-${HUGE - 1}/${HUGE}`,
      'l!',
    ]);

    const outside = await fetch(url, { headers: { range: `bytes=${HUGE}-` } });
    expect([outside.status, outside.headers.get('content-range')]).toEqual([416, `bytes */${HUGE}`]);
    expect((await outside.json()).error.code).toBe('range_not_satisfiable');

    const head = await fetch(url, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length')]).toEqual([200, String(HUGE)]);

    // The whole file: announced with its length; the first bytes are read, then the download is dropped.
    const whole = await fetch(url);
    expect([
      whole.status,
      whole.headers.get('content-length'),
      whole.headers.get('accept-ranges'),
      whole.headers.get('content-type'),
    ]).toEqual([200, String(HUGE), 'bytes', 'audio/wav']);
    const reader = whole.body!.getReader();
    expect((await reader.read()).done).toBe(false);
    await reader.cancel();
  }, 60_000);

  it('streams a large recording whole without holding it in memory', async () => {
    const key = `${TENANT}/large.wav`;
    await sparse(key, LARGE, { at: LARGE - 3, text: 'end' });
    const url = await urlOf(key);
    global.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    let received = 0;
    let last = Buffer.alloc(0);
    const res = await fetch(url);
    expect(res.headers.get('content-length')).toBe(String(LARGE));
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      received += chunk.length;
      last = Buffer.from(chunk.subarray(Math.max(0, chunk.length - 3)));
      if ((received & 0xfffff) < chunk.length) peak = Math.max(peak, process.memoryUsage().rss);
    }
    expect(received).toBe(LARGE);
    expect(last.toString()).toBe('end');
    // Generous: the whole file in memory would add 400 MB (the server's copy; the client here reads in chunks).
    expect(peak - before).toBeLessThan(200 * 1024 * 1024);
  }, 120_000);

  it('serves the in-memory store (tests, demos) the same way', async () => {
    const memory = new LocalRecordingStore({ dir: 'memory://', secretKey: 'download-test-secret-key-0123456789-abcdef' });
    const spool = path.join(dir, 'spooled.wav');
    const fh = await open(spool, 'w');
    await fh.write('0123456789');
    await fh.close();
    const key = `${TENANT}/small.wav`;
    await memory.put(key, spool, 'audio/wav');
    t.deps.recordings = memory;
    try {
      const url = await memory.signedUrl(key, 60_000);
      const whole = await t.app.inject({ method: 'GET', url });
      expect([whole.statusCode, whole.headers['content-length'], whole.body]).toEqual([200, '10', '0123456789']);
      const part = await t.app.inject({ method: 'GET', url, headers: { range: 'bytes=2-4' } });
      expect([part.statusCode, part.headers['content-range'], part.body]).toEqual([206, 'bytes 2-4/10', '234']);
    } finally {
      t.deps.recordings = store;
    }
  });

  it('parses ranges as RFC 9110 says', () => {
    expect(parseRange(undefined, 100)).toBeUndefined();
    expect(parseRange('bytes=0-9', 100)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=90-200', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-10', 100)).toEqual({ start: 90, end: 99 });
    expect(parseRange('bytes=-1000', 100)).toEqual({ start: 0, end: 99 });
    expect(parseRange('bytes=100-', 100)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 100)).toBe('unsatisfiable');
    // Ignored (the whole file): several ranges, another unit, nonsense, a reversed range.
    for (const h of ['bytes=0-1,5-6', 'items=0-1', 'bytes=abc', 'bytes=-', 'bytes=9-3']) expect(parseRange(h, 100), h).toBeUndefined();
  });
});
