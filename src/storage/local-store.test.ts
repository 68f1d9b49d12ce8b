// The local recording store: files under the recordings folder (or memory), keys that cannot leave it, and signed
// download URLs that stop working when tampered with, moved to another key, signed with another SECRET_KEY, or expired.
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalRecordingStore } from './local-store.js';
import { createRecordingStore } from './create-recording-store.js';
import { recordingKey } from './recording-store.js';
import { S3RecordingStore } from './s3-store.js';

const SECRET = 'local-store-test-secret-key-0123456789-abcdef';
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
async function folder(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'recordings-'));
  dirs.push(d);
  return path.join(d, 'recordings'); // not there yet: the store creates it
}
/** A recording file as a call leaves it, to be taken by put(); `inDir` puts it on another file system. */
let files = 0;
function fileOf(data: string, inDir = tmpdir()): string {
  const d = mkdtempSync(path.join(inDir, 'spool-'));
  dirs.push(d);
  const file = path.join(d, `call-${++files}.wav`);
  writeFileSync(file, data, { mode: 0o600 });
  return file;
}
const signed = (url: string) => {
  const u = new URL(url, 'http://x');
  return {
    key: u.pathname.replace('/api/v1/recordings/', ''),
    expires: u.searchParams.get('expires') ?? undefined,
    signature: u.searchParams.get('signature') ?? undefined,
  };
};

describe('LocalRecordingStore', () => {
  it('keeps files under the recordings folder, created as needed, and replaces them whole', async () => {
    const dir = await folder();
    const store = new LocalRecordingStore({ dir, secretKey: SECRET });
    const key = recordingKey('7d1c2b4e-0000-4000-8000-000000000001', '7d1c2b4e-0000-4000-8000-000000000002');
    const spooled = fileOf('RIFF one');
    await store.put(key, spooled, 'audio/wav');
    expect(await readFile(path.join(dir, key), 'utf8')).toBe('RIFF one');
    expect(existsSync(spooled)).toBe(false); // taken, not copied
    expect((await stat(path.join(dir, key))).mode & 0o777).toBe(0o600);
    // From another file system (no rename there): copied aside and renamed into place.
    const elsewhere = fileOf('RIFF two', existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
    await store.put(key, elsewhere, 'audio/wav');
    expect((await store.get(key))!.toString()).toBe('RIFF two');
    expect(existsSync(elsewhere)).toBe(false);
    // No partial files are left behind.
    expect(await readdir(path.dirname(path.join(dir, key)))).toEqual([path.basename(key)]);
    expect(await store.get('tenant/missing.wav')).toBeNull();
    await store.delete(key);
    expect(await store.get(key)).toBeNull();
    await store.delete(key);
  });

  it('refuses keys that could leave the folder or are not plain paths', async () => {
    const dir = await folder();
    const store = new LocalRecordingStore({ dir, secretKey: SECRET });
    for (const key of [
      '../x.wav',
      'a/../../x.wav',
      '/etc/passwd',
      'a/./b.wav',
      '.hidden',
      'a//b.wav',
      'a\\..\\b.wav',
      'a/b.wav\0',
      '',
      'a/%2e%2e/b',
      'a/b c.wav',
    ]) {
      await expect(store.put(key, fileOf('x'), 'audio/wav'), key).rejects.toThrow(/invalid recording key/);
      await expect(store.get(key), key).rejects.toThrow(/invalid recording key/);
      await expect(store.signedUrl(key, 1000), key).rejects.toThrow(/invalid recording key/);
      expect(store.verifyRecordingUrl(key, '9999999999', 'a'.repeat(64)), key).toBe('invalid');
    }
    const memory = new LocalRecordingStore({ dir: 'memory://', secretKey: SECRET });
    await expect(memory.put('../x.wav', fileOf('x'), 'audio/wav')).rejects.toThrow(/invalid recording key/);
  });

  it('keeps recordings in memory for memory://', async () => {
    const store = new LocalRecordingStore({ dir: 'memory://', secretKey: SECRET });
    await store.put('t/c.wav', fileOf('abc'), 'audio/wav');
    expect((await store.get('t/c.wav'))!.toString()).toBe('abc');
    await store.delete('t/c.wav');
    expect(await store.get('t/c.wav')).toBeNull();
  });

  it('signs download URLs: valid until they expire, refused when changed or signed with another secret', async () => {
    let now = Date.UTC(2030, 0, 1, 12, 0, 0, 500);
    const store = new LocalRecordingStore({
      dir: 'memory://',
      secretKey: SECRET,
      publicBaseUrl: 'https://voice.example.com',
      now: () => now,
    });
    const url = await store.signedUrl('tenant-a/call-1.wav', 60_000);
    expect(url).toMatch(/^https:\/\/voice\.example\.com\/api\/v1\/recordings\/tenant-a\/call-1\.wav\?expires=\d+&signature=[0-9a-f]{64}$/);
    const s = signed(url);
    expect(Number(s.expires)).toBe(Math.ceil((now + 60_000) / 1000));
    expect(store.verifyRecordingUrl(s.key, s.expires, s.signature)).toBe('valid');

    expect(store.verifyRecordingUrl('tenant-b/call-1.wav', s.expires, s.signature)).toBe('invalid');
    expect(store.verifyRecordingUrl(s.key, String(Number(s.expires) + 3600), s.signature)).toBe('invalid');
    expect(store.verifyRecordingUrl(s.key, s.expires, `${s.signature!.slice(0, 63)}${s.signature!.endsWith('0') ? '1' : '0'}`)).toBe(
      'invalid',
    );
    expect(store.verifyRecordingUrl(s.key, s.expires, undefined)).toBe('invalid');
    expect(store.verifyRecordingUrl(s.key, undefined, s.signature)).toBe('invalid');
    expect(store.verifyRecordingUrl(s.key, `${s.expires}.0`, s.signature)).toBe('invalid');
    const other = new LocalRecordingStore({ dir: 'memory://', secretKey: `${SECRET}-other`, now: () => now });
    expect(other.verifyRecordingUrl(s.key, s.expires, s.signature)).toBe('invalid');

    now += 60_000;
    expect(store.verifyRecordingUrl(s.key, s.expires, s.signature)).toBe('valid');
    now += 1000;
    expect(store.verifyRecordingUrl(s.key, s.expires, s.signature)).toBe('expired');
    // Without PUBLIC_BASE_URL the URL is relative to this service.
    expect(await new LocalRecordingStore({ dir: 'memory://', secretKey: SECRET }).signedUrl('t/c.wav', 1000)).toMatch(
      /^\/api\/v1\/recordings\/t\/c\.wav\?expires=/,
    );
  });
});

describe('createRecordingStore', () => {
  it('uses the bucket when one is configured, the local store otherwise', () => {
    const recordings = { dir: 'memory://', spoolDir: tmpdir(), urlTtlMs: 900_000, s3: undefined };
    expect(createRecordingStore({ recordings, publicBaseUrl: undefined }, SECRET)).toBeInstanceOf(LocalRecordingStore);
    const s3 = {
      bucket: 'b',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:1',
      accessKeyId: 'a',
      secretAccessKey: 's',
      forcePathStyle: true,
    };
    const store = createRecordingStore({ recordings: { ...recordings, s3 }, publicBaseUrl: undefined }, SECRET);
    expect(store).toBeInstanceOf(S3RecordingStore);
    (store as S3RecordingStore).destroy();
  });
});
