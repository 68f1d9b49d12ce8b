// Recordings on this machine: files under the recordings folder (or a Map for 'memory://'), downloaded through
// our own /api/v1/recordings/<key> route with URLs signed by a key derived from SECRET_KEY.
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { copyFile, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { deriveKeys, type SecretKeys } from '../lib/derive-key.js';
import { assertRecordingKey, isRecordingKey, type RecordingStore } from './recording-store.js';

export const RECORDINGS_PATH = '/api/v1/recordings/';

export type UrlCheck = 'valid' | 'invalid' | 'expired';

/** A recording opened for download: its size, and its bytes streamed from disk (never read whole into memory). */
export interface OpenRecording {
  size: number;
  /** The bytes from `start` to `end` inclusive (the whole file without a range); closes the file when done. */
  stream(range?: { start: number; end: number }): Readable;
  /** Closes the file without streaming it. */
  close(): Promise<void>;
}

export interface LocalStoreOptions {
  /** A folder, or 'memory://' to keep recordings in this process (tests). */
  dir: string;
  /** SECRET_KEY, or the key ring (newest first). */
  secretKey: SecretKeys;
  /** Prefix of the URLs handed out (PUBLIC_BASE_URL); relative URLs without it. */
  publicBaseUrl?: string;
  now?: () => number;
}

export class LocalRecordingStore implements RecordingStore {
  private readonly memory: Map<string, Buffer> | undefined;
  private readonly root: string;
  /** Signs with the first (the newest secret's), verifies with any: URLs signed before a rotation stay good. */
  private readonly signingKeys: [Buffer, ...Buffer[]];
  private readonly now: () => number;

  constructor(private readonly opts: LocalStoreOptions) {
    this.memory = opts.dir === 'memory://' ? new Map() : undefined;
    this.root = path.resolve(opts.dir);
    this.signingKeys = deriveKeys(opts.secretKey, 'recording-urls');
    this.now = opts.now ?? Date.now;
  }

  async put(key: string, source: string, _contentType: string): Promise<void> {
    if (this.memory) {
      assertRecordingKey(key);
      this.memory.set(key, await readFile(source));
      await rm(source, { force: true });
      return;
    }
    const file = this.file(key);
    await mkdir(path.dirname(file), { recursive: true });
    try {
      // Renamed into place: a download never sees half a file, even if we crash mid-write.
      await rename(source, file);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    }
    // On another file system: copied aside, then renamed into place.
    const partial = `${file}.${randomUUID()}.partial`;
    try {
      await copyFile(source, partial);
      await rename(partial, file);
      await rm(source, { force: true });
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
  }

  async get(key: string): Promise<Buffer | null> {
    if (this.memory) {
      assertRecordingKey(key);
      return this.memory.get(key) ?? null;
    }
    try {
      return await readFile(this.file(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
  }

  /**
   * Opens a recording for download, or null when there is none. The size and the bytes come from the same open
   * file, so a recording replaced meanwhile (a merge after a restart) is never served half old, half new.
   */
  async open(key: string): Promise<OpenRecording | null> {
    if (this.memory) {
      assertRecordingKey(key);
      const data = this.memory.get(key);
      if (!data) return null;
      return { size: data.length, stream: (r) => Readable.from([r ? data.subarray(r.start, r.end + 1) : data]), close: async () => {} };
    }
    let handle;
    try {
      handle = await open(this.file(key), 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw err;
    }
    const fh = handle;
    try {
      const { size } = await fh.stat();
      return {
        size,
        stream: (r) => fh.createReadStream({ start: r?.start ?? 0, ...(r && { end: r.end }), autoClose: true }),
        close: () => fh.close(),
      };
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    if (this.memory) {
      assertRecordingKey(key);
      this.memory.delete(key);
      return;
    }
    await rm(this.file(key), { force: true });
  }

  async signedUrl(key: string, ttlMs: number): Promise<string> {
    assertRecordingKey(key);
    // Rounded up: the URL lasts at least as long as asked.
    const expires = Math.ceil((this.now() + ttlMs) / 1000);
    return `${this.opts.publicBaseUrl ?? ''}${RECORDINGS_PATH}${key}?expires=${expires}&signature=${this.sign(key, String(expires))}`;
  }

  /** Whether a download URL's `expires` and `signature` were made by signedUrl for this key, and still hold. */
  verifyRecordingUrl(key: string, expires: string | undefined, signature: string | undefined): UrlCheck {
    if (!isRecordingKey(key) || !expires || !signature || !/^\d{1,12}$/.test(expires) || !/^[0-9a-f]{64}$/.test(signature))
      return 'invalid';
    const given = Buffer.from(signature, 'hex');
    if (!this.signingKeys.some((k) => timingSafeEqual(Buffer.from(this.sign(key, expires, k), 'hex'), given))) return 'invalid';
    return Number(expires) * 1000 < this.now() ? 'expired' : 'valid';
  }

  private sign(key: string, expires: string, signingKey = this.signingKeys[0]): string {
    // A newline cannot occur in a key, so key and expiry cannot be shifted into each other.
    return createHmac('sha256', signingKey).update(`${key}\n${expires}`).digest('hex');
  }

  /** The key's file, checked again after resolving: it must stay inside the recordings folder. */
  private file(key: string): string {
    assertRecordingKey(key);
    const file = path.resolve(this.root, key);
    if (!file.startsWith(this.root + path.sep)) throw new Error('recording key escapes the recordings folder');
    return file;
  }
}
