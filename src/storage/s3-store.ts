// Recordings in an S3-compatible bucket (AWS S3, MinIO, R2, ...) through the official SDK; downloads go straight
// to the bucket with presigned GetObject URLs, so the audio never passes through this service.
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DeleteObjectCommand, GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Config } from '../config.js';
import { assertRecordingKey, type RecordingStore } from './recording-store.js';

export type S3StoreOptions = NonNullable<Config['recordings']['s3']>;

/** SigV4 presigned URLs are valid for at most seven days. */
const MAX_PRESIGN_S = 7 * 86_400;
/** A recording's upload is tried this many times before the call reports `recording.failed`. */
const PUT_ATTEMPTS = 4;
const PUT_RETRY_BASE_MS = 200;

/** S3's answers worth another try: throttling, server errors, timeouts, and connections lost before an answer. */
function retryable(err: unknown): boolean {
  if (err instanceof S3ServiceException) {
    const status = err.$metadata.httpStatusCode ?? 0;
    return status >= 500 || status === 429 || ['SlowDown', 'RequestTimeout', 'Throttling', 'ThrottlingException'].includes(err.name);
  }
  const e = err as { code?: unknown; name?: unknown } | null;
  // `socket hang up` (a keep-alive socket the server had just closed) is ECONNRESET.
  return ['ECONNRESET', 'EPIPE', 'ECONNREFUSED', 'ETIMEDOUT'].includes(String(e?.code)) || e?.name === 'TimeoutError';
}

export class S3RecordingStore implements RecordingStore {
  private readonly client: S3Client;
  private readonly bucket: string;

  constructor(opts: S3StoreOptions) {
    this.bucket = opts.bucket;
    this.client = new S3Client({
      region: opts.region,
      endpoint: opts.endpoint,
      forcePathStyle: opts.forcePathStyle,
      // Without keys the SDK's default chain applies (an instance or task role).
      credentials:
        opts.accessKeyId && opts.secretAccessKey ? { accessKeyId: opts.accessKeyId, secretAccessKey: opts.secretAccessKey } : undefined,
    });
  }

  async put(key: string, file: string, contentType: string): Promise<void> {
    assertRecordingKey(key);
    // Streamed from the file (a long call's WAV is tens of MB), as aws-chunked with a checksum trailer. The SDK
    // does not retry a streamed body (it cannot rewind it), and the recording is lost if this fails, so a
    // transient failure is retried here with the file opened again.
    const { size } = await stat(file);
    for (let attempt = 1; ; attempt++) {
      const Body = createReadStream(file);
      try {
        await this.client.send(
          new PutObjectCommand({ Bucket: this.bucket, Key: key, Body, ContentType: contentType, ContentLength: size }),
        );
        break;
      } catch (err) {
        if (attempt >= PUT_ATTEMPTS || !retryable(err)) throw err;
        // Exponential, with full jitter: 0-200 ms, 0-800 ms, 0-3.2 s.
        await sleep(Math.random() * PUT_RETRY_BASE_MS * 4 ** (attempt - 1));
      } finally {
        Body.destroy();
      }
    }
    await rm(file, { force: true });
  }

  async get(key: string): Promise<Buffer | null> {
    assertRecordingKey(key);
    try {
      const out = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!out.Body) return Buffer.alloc(0);
      return Buffer.from(await out.Body.transformToByteArray());
    } catch (err) {
      // Some S3-compatible services answer a plain 404 without the NoSuchKey code.
      if (
        err instanceof NoSuchKey ||
        (err instanceof S3ServiceException && err.$metadata.httpStatusCode === 404 && err.name !== 'NoSuchBucket')
      )
        return null;
      throw err;
    }
  }

  async delete(key: string): Promise<void> {
    assertRecordingKey(key);
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
  }

  async signedUrl(key: string, ttlMs: number): Promise<string> {
    assertRecordingKey(key);
    const expiresIn = Math.min(MAX_PRESIGN_S, Math.max(1, Math.ceil(ttlMs / 1000)));
    return getSignedUrl(this.client, new GetObjectCommand({ Bucket: this.bucket, Key: key }), { expiresIn });
  }

  /** Closes the SDK's keep-alive sockets. */
  destroy(): void {
    this.client.destroy();
  }
}
