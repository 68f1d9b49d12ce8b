// The S3 recording store with the real AWS SDK against the strict fake S3 (test/fakes/s3.ts). The fake's own
// Signature V4 check is pinned to AWS's published examples first, so the SDK and the fake cannot agree on a mistake.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FakeS3 } from '../../test/fakes/s3.js';
import { S3RecordingStore } from './s3-store.js';

const BUCKET = 'recordings';
let s3: FakeS3;
beforeAll(async () => {
  s3 = await new FakeS3({ region: 'eu-west-1', buckets: [BUCKET, 'examplebucket'] }).start();
  // AWS's documented example credentials (Signature V4 examples in the S3 API reference).
  s3.credentials.set('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
});
const spool = mkdtempSync(path.join(tmpdir(), 's3-store-test-'));
afterAll(() => {
  rmSync(spool, { recursive: true, force: true });
  return s3.stop();
});
let files = 0;
/** The recording file put() takes. */
function fileOf(data: Buffer): string {
  const file = path.join(spool, `call-${++files}.wav`);
  writeFileSync(file, data);
  return file;
}
afterEach(() => {
  s3.now = Date.now;
});

const options = (over: Partial<ConstructorParameters<typeof S3RecordingStore>[0]> = {}) => ({
  bucket: BUCKET,
  endpoint: s3.baseUrl,
  region: 'eu-west-1',
  accessKeyId: s3.accessKeyId,
  secretAccessKey: s3.secretAccessKey,
  forcePathStyle: true,
  ...over,
});
const sdkError = (p: Promise<unknown>) =>
  p.then(
    () => {
      throw new Error('expected the request to be refused');
    },
    (err: { name: string; message: string; $metadata?: { httpStatusCode?: number } }) => ({
      name: err.name,
      status: err.$metadata?.httpStatusCode,
      message: err.message,
    }),
  );
const wav = (n: number) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 7) % 256));

/** A raw HTTP request to the fake, with exactly these headers (Host included). */
function raw(server: FakeS3, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(server.baseUrl);
    const req = request({ host: url.hostname, port: url.port, path, method: 'GET', headers, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('error', reject);
    req.end();
  });
}
const code = (xml: string) => /<Code>([^<]+)<\/Code>/.exec(xml)?.[1];

describe('fake S3 signature checks, pinned to AWS documentation examples', () => {
  // The GET Object example of "Signature Calculations for the Authorization Header" (examplebucket, 2013-05-24).
  const headers = {
    host: 'examplebucket.s3.amazonaws.com',
    range: 'bytes=0-9',
    'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    'x-amz-date': '20130524T000000Z',
    authorization:
      'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
  };
  const presigned =
    '/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404';
  let usEast: FakeS3;
  beforeAll(async () => {
    usEast = await new FakeS3({ region: 'us-east-1', buckets: ['examplebucket'] }).start();
    usEast.credentials.set('AKIAIOSFODNN7EXAMPLE', 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY');
    usEast.now = () => Date.UTC(2013, 4, 24, 0, 5);
  });
  afterAll(() => usEast.stop());
  const rawUsEast = (path: string, h: Record<string, string>) => raw(usEast, path, h);

  it('accepts the documented Authorization header (the object is missing, so NoSuchKey) and refuses any change', async () => {
    const ok = await rawUsEast('/test.txt', headers);
    expect([ok.status, code(ok.body)]).toEqual([404, 'NoSuchKey']);
    expect(ok.body).toContain('<Key>test.txt</Key>');
    const otherRange = await rawUsEast('/test.txt', { ...headers, range: 'bytes=0-10' });
    expect([otherRange.status, code(otherRange.body)]).toEqual([403, 'SignatureDoesNotMatch']);
    expect(otherRange.body).toContain('<CanonicalRequest>GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-10\n');
    const otherKey = await rawUsEast('/test.txT', headers);
    expect(code(otherKey.body)).toBe('SignatureDoesNotMatch');
    const unknownKey = await rawUsEast('/test.txt', {
      ...headers,
      authorization: headers.authorization.replace('AKIAIOSFODNN7EXAMPLE', 'AKIAIOSFODNN7EXAMPLF'),
    });
    expect([unknownKey.status, code(unknownKey.body)]).toEqual([403, 'InvalidAccessKeyId']);
    const noAuth = await rawUsEast('/test.txt', { host: headers.host });
    expect([noAuth.status, code(noAuth.body)]).toEqual([403, 'AccessDenied']);
  });

  it('accepts the documented presigned URL until X-Amz-Expires has passed', async () => {
    const ok = await rawUsEast(presigned, { host: 'examplebucket.s3.amazonaws.com' });
    expect([ok.status, code(ok.body)]).toEqual([404, 'NoSuchKey']);
    const tampered = await rawUsEast(presigned.replace('X-Amz-Expires=86400', 'X-Amz-Expires=86401'), {
      host: 'examplebucket.s3.amazonaws.com',
    });
    expect([tampered.status, code(tampered.body)]).toEqual([403, 'SignatureDoesNotMatch']);
    usEast.now = () => Date.UTC(2013, 4, 25, 0, 0, 1);
    const expired = await rawUsEast(presigned, { host: 'examplebucket.s3.amazonaws.com' });
    expect([expired.status, code(expired.body)]).toEqual([403, 'AccessDenied']);
    expect(expired.body).toContain(
      '<Message>Request has expired</Message><X-Amz-Expires>86400</X-Amz-Expires><Expires>2013-05-25T00:00:00Z</Expires>',
    );
  });
});

describe('S3RecordingStore with the AWS SDK', () => {
  it('puts (streamed from its file, which it takes), gets and deletes a recording; the SDK signs it with a CRC32 trailer', async () => {
    const store = new S3RecordingStore(options());
    const data = wav(5000);
    const file = fileOf(data);
    await store.put('tenant-a/call-1.wav', file, 'audio/wav');
    expect(existsSync(file)).toBe(false);
    const stored = s3.object(BUCKET, 'tenant-a/call-1.wav')!;
    expect(stored.body.equals(data)).toBe(true);
    expect(stored.contentType).toBe('audio/wav');
    expect(stored.checksum?.algorithm).toBe('crc32');
    const put = s3.requests.findLast((r) => r.method === 'PUT')!;
    expect(put.headers['x-amz-content-sha256']).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    expect(put.headers.authorization).toContain('Credential=' + s3.accessKeyId);

    expect((await store.get('tenant-a/call-1.wav'))!.equals(data)).toBe(true);
    expect(await store.get('tenant-a/missing.wav')).toBeNull();
    await store.delete('tenant-a/call-1.wav');
    expect(await store.get('tenant-a/call-1.wav')).toBeNull();
    await store.delete('tenant-a/call-1.wav'); // deleting what is gone succeeds, as in S3
    await expect(store.put('../escape.wav', fileOf(data), 'audio/wav')).rejects.toThrow(/invalid recording key/);
    store.destroy();
  });

  it('uploads the WAV of a long call (30 minutes at 8 kHz stereo is ~58 MB; here 6 MB, sent with Expect: 100-continue)', async () => {
    const store = new S3RecordingStore(options());
    const data = wav(6 * 1024 * 1024);
    await store.put('tenant-a/long.wav', fileOf(data), 'audio/wav');
    expect(s3.requests.findLast((r) => r.method === 'PUT')!.headers.expect).toBe('100-continue');
    expect((await store.get('tenant-a/long.wav'))!.equals(data)).toBe(true);
    store.destroy();
  });

  it('retries a put that met throttling or a dropped connection, sending the whole file again; a refusal is not retried', async () => {
    const store = new S3RecordingStore(options());
    const puts = () => s3.requests.filter((r) => r.method === 'PUT').map((r) => [r.status, r.code ?? null]);
    const data = wav(300_000);
    const before = s3.requests.length;
    // A keep-alive socket S3 had just closed, then throttling: the SDK alone would give up (a stream is not rewound).
    s3.failNext('hang-up', { status: 503, code: 'SlowDown', message: 'Please reduce your request rate.' });
    const file = fileOf(data);
    await store.put('tenant-a/retried.wav', file, 'audio/wav');
    expect(puts().slice(-3)).toEqual([
      [0, 'hang-up'],
      [503, 'SlowDown'],
      [200, null],
    ]);
    expect(s3.object(BUCKET, 'tenant-a/retried.wav')!.body.equals(data)).toBe(true);
    expect(existsSync(file)).toBe(false);

    s3.failNext({ status: 403, code: 'AccessDenied', message: 'Access Denied' });
    expect(await sdkError(store.put('tenant-a/refused.wav', fileOf(data), 'audio/wav'))).toMatchObject({
      name: 'AccessDenied',
      status: 403,
    });
    expect(s3.object(BUCKET, 'tenant-a/refused.wav')).toBeUndefined();

    // Four attempts, then the failure is the caller's (the call records recording.failed).
    const internal = { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' };
    s3.failNext(internal, internal, internal, internal);
    expect(await sdkError(store.put('tenant-a/lost.wav', fileOf(data), 'audio/wav'))).toMatchObject({ name: 'InternalError', status: 500 });
    expect(puts().slice(-5)).toEqual([[403, 'AccessDenied'], ...Array(4).fill([500, 'InternalError'])]);
    expect(s3.requests.length - before).toBe(3 + 1 + 4);
    store.destroy();
  });

  it('hands out presigned URLs that download the recording, and are refused once tampered with or expired', async () => {
    const store = new S3RecordingStore(options());
    const data = wav(3000);
    await store.put('tenant-a/call-2.wav', fileOf(data), 'audio/wav');
    await store.put('tenant-b/call-3.wav', fileOf(wav(10)), 'audio/wav');
    const url = await store.signedUrl('tenant-a/call-2.wav', 60_000);
    expect(url.startsWith(`${s3.baseUrl}/${BUCKET}/tenant-a/call-2.wav?`)).toBe(true);
    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('60');

    const ok = await fetch(url);
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('audio/wav');
    expect(Buffer.from(await ok.arrayBuffer()).equals(data)).toBe(true);

    // Another tenant's key under the same signature, a longer life, a forged signature: all refused.
    for (const forged of [
      url.replace('tenant-a/call-2.wav', 'tenant-b/call-3.wav'),
      url.replace('X-Amz-Expires=60', 'X-Amz-Expires=600'),
      url.replace(/X-Amz-Signature=([0-9a-f])/, (_m, c: string) => `X-Amz-Signature=${c === '0' ? '1' : '0'}`),
    ]) {
      const res = await fetch(forged);
      const body = await res.text();
      expect([res.status, code(body)], forged).toEqual([403, 'SignatureDoesNotMatch']);
    }
    s3.now = () => Date.now() + 61_000;
    const expired = await fetch(url);
    expect([expired.status, code(await expired.text())]).toEqual([403, 'AccessDenied']);
    store.destroy();
  });

  it('is refused with a wrong secret, an unknown key id, a wrong region or a missing bucket', async () => {
    const cases: [Partial<Parameters<typeof options>[0]>, string, number][] = [
      [{ secretAccessKey: 'not-the-secret' }, 'SignatureDoesNotMatch', 403],
      [{ accessKeyId: 'AKIAUNKNOWN0000000000' }, 'InvalidAccessKeyId', 403],
      [{ region: 'us-west-2' }, 'AuthorizationHeaderMalformed', 400],
      [{ bucket: 'no-such-bucket' }, 'NoSuchBucket', 404],
    ];
    for (const [over, name, status] of cases) {
      const store = new S3RecordingStore(options(over));
      expect(await sdkError(store.put('t/c.wav', fileOf(wav(10)), 'audio/wav')), name).toMatchObject({ name, status });
      store.destroy();
    }
    expect(s3.object(BUCKET, 't/c.wav')).toBeUndefined();
  });

  it('refuses a body, a signed header or an extra x-amz header changed after signing', async () => {
    type Change = (headers: Record<string, string>) => { body?: Buffer };
    const tamperedPut = async (change: Change) => {
      const client = new S3Client({
        endpoint: s3.baseUrl,
        region: 'eu-west-1',
        forcePathStyle: true,
        credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
      });
      // Runs after the signer (deserialize wraps the HTTP handler): what S3 receives is not what was signed.
      client.middlewareStack.add(
        (next) => async (args) => {
          const req = (args as unknown as { request: { headers: Record<string, string>; body?: unknown } }).request;
          const { body } = change(req.headers);
          if (body) req.body = body;
          return next(args);
        },
        { step: 'deserialize', priority: 'low' },
      );
      const result = await sdkError(
        client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 't/tampered.wav', Body: wav(100), ContentType: 'audio/wav' })),
      );
      client.destroy();
      return result;
    };
    expect(await tamperedPut(() => ({ body: wav(100).fill(1) }))).toMatchObject({ name: 'XAmzContentSHA256Mismatch', status: 400 });
    expect(
      await tamperedPut((h) => {
        h['content-type'] = 'text/html';
        return {};
      }),
    ).toMatchObject({ name: 'SignatureDoesNotMatch', status: 403 });
    expect(
      await tamperedPut((h) => {
        h['x-amz-acl'] = 'public-read';
        return {};
      }),
    ).toMatchObject({ name: 'AccessDenied', status: 403 });
    expect(s3.object(BUCKET, 't/tampered.wav')).toBeUndefined();
  });

  it('accepts a streamed upload (aws-chunked with a CRC32 trailer) and checks the trailer', async () => {
    const client = new S3Client({
      endpoint: s3.baseUrl,
      region: 'eu-west-1',
      forcePathStyle: true,
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const parts = [wav(70_000), wav(1234)];
    await client.send(
      new PutObjectCommand({
        Bucket: BUCKET,
        Key: 't/streamed.wav',
        Body: Readable.from(parts),
        ContentLength: 71_234,
        ContentType: 'audio/wav',
      }),
    );
    const put = s3.requests.findLast((r) => r.method === 'PUT')!;
    expect(put.headers['x-amz-content-sha256']).toBe('STREAMING-UNSIGNED-PAYLOAD-TRAILER');
    expect(s3.object(BUCKET, 't/streamed.wav')!.body.equals(Buffer.concat(parts))).toBe(true);

    // The same upload with one byte of the data changed on the wire: the trailer's CRC32 no longer matches.
    client.middlewareStack.add(
      (next) => async (args) => {
        const req = (args as unknown as { request: { body?: unknown } }).request;
        const source = req.body as AsyncIterable<Buffer | string>;
        req.body = Readable.from(
          (async function* () {
            let first = true;
            for await (const chunk of source) {
              const b = Buffer.from(chunk);
              if (first && b.length > 20) b[b.length - 10] = b[b.length - 10]! ^ 0xff;
              first = false;
              yield b;
            }
          })(),
        );
        return next(args);
      },
      { step: 'deserialize', priority: 'low' },
    );
    const refused = await sdkError(
      client.send(new PutObjectCommand({ Bucket: BUCKET, Key: 't/corrupt.wav', Body: Readable.from([wav(5000)]), ContentLength: 5000 })),
    );
    expect(refused).toMatchObject({ name: 'BadDigest', status: 400 });
    expect(s3.object(BUCKET, 't/corrupt.wav')).toBeUndefined();
    client.destroy();
  });
});
