// Recordings in an S3-compatible bucket (AWS S3, MinIO, R2, ...) through the official SDK; downloads go straight
// to the bucket with presigned GetObject URLs, so the audio never passes through this service.
import { createReadStream } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { DeleteObjectCommand, GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import type { Config } from '../config.js';
import { assertRecordingKey, type RecordingStore } from './recording-store.js';

export type S3StoreOptions = NonNullable<Config['recordings']['s3']>;

/** SigV4 presigned URLs are valid for at most seven days. */
const MAX_PRESIGN_S = 7 * 86_400;

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
    // Streamed from the file (a long call's WAV is tens of MB), as aws-chunked with a checksum trailer.
    const { size } = await stat(file);
    await this.client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: createReadStream(file), ContentType: contentType, ContentLength: size }),
    );
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
