// A strict local fake of Amazon S3 (path-style, and virtual-hosted for *.s3.amazonaws.com hosts): PutObject,
// GetObject, HeadObject and DeleteObject, each authenticated with AWS Signature Version 4 exactly as S3 checks it:
// the Authorization header (payload as a SHA-256, UNSIGNED-PAYLOAD, or the aws-chunked body with a checksum trailer
// that the SDK streams, STREAMING-UNSIGNED-PAYLOAD-TRAILER) or a presigned query (X-Amz-Expires). Checksums (x-amz-checksum-*, Content-MD5)
// are verified, and failures answer with S3's status codes and XML error bodies.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { crc32 } from 'node:zlib';
import { listenLocal, type LocalServer } from './local-server.js';

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** S3 refuses requests whose time is further than this from its own clock. */
const MAX_SKEW_MS = 15 * 60_000;
const MAX_PRESIGN_S = 604_800;

export interface StoredObject {
  body: Buffer;
  contentType: string;
  etag: string;
  lastModified: Date;
  checksum?: { algorithm: string; value: string };
}

interface S3Error {
  status: number;
  code: string;
  message: string;
  extra?: Record<string, string>;
}

class Refusal extends Error {
  constructor(readonly error: S3Error) {
    super(error.message);
  }
}
const refuse = (status: number, code: string, message: string, extra?: Record<string, string>): never => {
  throw new Refusal({ status, code, message, extra });
};

/** RFC 3986 percent-encoding as SigV4 wants it: everything but A-Z a-z 0-9 - _ . ~ */
export function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
const hex = (b: Buffer) => b.toString('hex');
const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

export function signingKey(secret: string, date: string, region: string, service: string): Buffer {
  return hmac(hmac(hmac(hmac(`AWS4${secret}`, date), region), service), 'aws4_request');
}

/** The request body as decoded, with the checksums that came as aws-chunked trailers. */
interface Payload {
  body: Buffer;
  trailers: Map<string, string>;
}

interface Credential {
  accessKeyId: string;
  date: string;
  region: string;
  service: string;
  terminator: string;
  scope: string;
}

export class FakeS3 {
  readonly region: string;
  /** Access key id -> secret access key. */
  readonly credentials = new Map<string, string>();
  readonly accessKeyId = `AKIA${randomBytes(8).toString('hex').toUpperCase()}`;
  readonly secretAccessKey = randomBytes(30).toString('base64');
  readonly buckets = new Map<string, Map<string, StoredObject>>();
  /** Every request, with the outcome: for assertions on what the client sent. */
  readonly requests: { method: string; url: string; headers: IncomingMessage['headers']; status: number; code?: string }[] = [];
  /** S3's clock, ms since the epoch (tests move it to expire URLs). */
  now: () => number = Date.now;
  baseUrl = '';
  private failures: ({ status: number; code: string; message: string } | 'hang-up')[] = [];
  private listening?: LocalServer;

  constructor(opts: { region?: string; buckets?: string[] } = {}) {
    this.region = opts.region ?? 'us-east-1';
    this.credentials.set(this.accessKeyId, this.secretAccessKey);
    for (const b of opts.buckets ?? []) this.buckets.set(b, new Map());
  }

  /**
   * The next requests (after authentication) fail with these, e.g. 503 SlowDown or 500 InternalError; 'hang-up'
   * closes the connection without an answer, as a server does to a keep-alive socket it has just timed out.
   */
  failNext(...f: ({ status: number; code: string; message: string } | 'hang-up')[]): void {
    this.failures.push(...f);
  }

  /** The service's settings for recordings in `bucket` of this fake (path-style, as for MinIO). */
  recordingsEnv(bucket: string): Record<string, string> {
    return {
      RECORDINGS_S3_BUCKET: bucket,
      RECORDINGS_S3_ENDPOINT: this.baseUrl,
      RECORDINGS_S3_REGION: this.region,
      RECORDINGS_S3_ACCESS_KEY_ID: this.accessKeyId,
      RECORDINGS_S3_SECRET_ACCESS_KEY: this.secretAccessKey,
      RECORDINGS_S3_FORCE_PATH_STYLE: 'true',
    };
  }

  object(bucket: string, key: string): StoredObject | undefined {
    return this.buckets.get(bucket)?.get(key);
  }

  async start(): Promise<this> {
    this.listening = await listenLocal(createServer((req, res) => void this.handle(req, res)));
    this.baseUrl = this.listening.origin;
    return this;
  }

  async stop(): Promise<void> {
    await this.listening?.close();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomBytes(8).toString('hex').toUpperCase();
    const log = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, status: 0, code: undefined as string | undefined };
    this.requests.push(log);
    res.setHeader('x-amz-request-id', requestId);
    res.setHeader('x-amz-id-2', randomBytes(24).toString('base64'));
    res.setHeader('server', 'AmazonS3');
    let resource = '';
    try {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks);
      const target = this.target(req);
      resource = target.resource;
      const payload = this.authenticate(req, target, raw);
      const failure = this.failures.shift();
      if (failure === 'hang-up') {
        log.code = 'hang-up';
        req.socket.destroy();
        return;
      }
      if (failure) refuse(failure.status, failure.code, failure.message);
      const status = this.operate(req, res, target, payload);
      log.status = status;
    } catch (err) {
      const e: S3Error =
        err instanceof Refusal
          ? err.error
          : { status: 500, code: 'InternalError', message: 'We encountered an internal error. Please try again.' };
      if (!(err instanceof Refusal)) console.error('fake S3 failed', err);
      log.status = e.status;
      log.code = e.code;
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const extra = Object.entries(e.extra ?? {})
        .map(([k, v]) => `<${k}>${xmlEscape(v)}</${k}>`)
        .join('');
      const body =
        '<?xml version="1.0" encoding="UTF-8"?>\n' +
        `<Error><Code>${e.code}</Code><Message>${xmlEscape(e.message)}</Message>${extra}${resource ? `<Resource>${xmlEscape(resource)}</Resource>` : ''}<RequestId>${requestId}</RequestId><HostId>${randomBytes(24).toString('base64')}</HostId></Error>`;
      // HEAD responses carry no body, so the status and headers are all a client gets.
      res.writeHead(e.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
    }
  }

  // ---- request target ----

  private target(req: IncomingMessage): { bucket: string; key: string; rawPath: string; rawQuery: string; resource: string } {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const rawPath = q === -1 ? url : url.slice(0, q);
    const rawQuery = q === -1 ? '' : url.slice(q + 1);
    let segments: string[];
    try {
      segments = rawPath.split('/').slice(1).map(decodeURIComponent);
    } catch {
      return refuse(400, 'InvalidURI', "Couldn't parse the specified URI.");
    }
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    const virtual = /^(.+)\.s3(?:[.-][a-z0-9-]+)?\.amazonaws\.com$/.exec(host);
    const bucket = virtual ? virtual[1]! : (segments.shift() ?? '');
    const key = segments.join('/');
    return { bucket, key, rawPath, rawQuery, resource: `/${bucket}${key ? `/${key}` : ''}` };
  }

  // ---- Signature Version 4 ----

  /** Checks the request's signature; returns the request body (decoded from aws-chunked when it was sent so). */
  private authenticate(req: IncomingMessage, target: { rawPath: string; rawQuery: string }, raw: Buffer): Payload {
    const query = parseQuery(target.rawQuery);
    const presigned = query.some(([k]) => k === 'X-Amz-Algorithm' || k === 'X-Amz-Signature' || k === 'X-Amz-Credential');
    const header = req.headers.authorization;
    if (presigned && header !== undefined)
      refuse(
        400,
        'InvalidArgument',
        'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
      );
    if (presigned) {
      this.checkPresigned(req, target.rawPath, query);
      return { body: raw, trailers: new Map() };
    }
    if (header === undefined) refuse(403, 'AccessDenied', 'Access Denied');
    return this.checkHeader(req, target.rawPath, query, header!, raw);
  }

  private checkHeader(req: IncomingMessage, rawPath: string, query: [string, string][], header: string, raw: Buffer): Payload {
    const m = /^(\S+) Credential=([^,\s]+),\s*SignedHeaders=([^,\s]+),\s*Signature=([^,\s]+)\s*$/.exec(header);
    if (!header.startsWith(`${ALGORITHM} `))
      refuse(400, 'InvalidArgument', 'Unsupported Authorization Type', { ArgumentName: 'Authorization', ArgumentValue: header });
    if (!m)
      refuse(
        400,
        'AuthorizationHeaderMalformed',
        'The authorization header is malformed; the authorization header requires three components: Credential, SignedHeaders, and Signature.',
      );
    const [, , credentialText, signedHeadersText, signature] = m!;
    const amzDate = headerValue(req, 'x-amz-date');
    if (!amzDate) refuse(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    const when = parseAmzDate(amzDate!);
    if (when === undefined) refuse(403, 'AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    const credential = this.credential(credentialText!, amzDate!, 'header');
    const secret = this.secretFor(credential);
    if (Math.abs(this.now() - when!) > MAX_SKEW_MS) {
      refuse(403, 'RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
        RequestTime: amzDate!,
        ServerTime: new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        MaxAllowedSkewMilliseconds: String(MAX_SKEW_MS),
      });
    }
    const signedHeaders = signedHeaderList(signedHeadersText!);
    this.checkEverySignedAmzHeader(req, signedHeaders);

    const contentSha = headerValue(req, 'x-amz-content-sha256');
    if (contentSha === undefined) refuse(400, 'InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    // The SDK streams with a checksum trailer; the chunk-signed variants it never sends are not implemented here.
    const streaming = contentSha === 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
    if (contentSha !== 'UNSIGNED-PAYLOAD' && !streaming && !/^[0-9a-f]{64}$/.test(contentSha!)) {
      if (contentSha!.startsWith('STREAMING-')) refuse(501, 'NotImplemented', `This fake does not implement ${contentSha}`);
      refuse(
        400,
        'InvalidArgument',
        'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD, STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER or a valid sha256 value.',
        {
          ArgumentName: 'x-amz-content-sha256',
          ArgumentValue: contentSha!,
        },
      );
    }

    const canonicalRequest = [
      req.method ?? '',
      canonicalUri(rawPath),
      canonicalQuery(query),
      canonicalHeaders(req, signedHeaders),
      signedHeaders.join(';'),
      contentSha,
    ].join('\n');
    const stringToSign = [ALGORITHM, amzDate, credential.scope, sha256(canonicalRequest)].join('\n');
    const key = signingKey(secret, credential.date, credential.region, credential.service);
    this.compare(hex(hmac(key, stringToSign)), signature!, credential, stringToSign, canonicalRequest);

    if (streaming) return this.decodeChunked(req, raw);
    if (contentSha !== 'UNSIGNED-PAYLOAD' && sha256(raw) !== contentSha) {
      refuse(400, 'XAmzContentSHA256Mismatch', "The provided 'x-amz-content-sha256' header does not match what was computed.", {
        ClientComputedContentSHA256: contentSha!,
        S3ComputedContentSHA256: sha256(raw),
      });
    }
    return { body: raw, trailers: new Map() };
  }

  private checkPresigned(req: IncomingMessage, rawPath: string, query: [string, string][]): void {
    const param = (name: string) => query.find(([k]) => k === name)?.[1];
    const [algorithm, credentialText, amzDate, expiresText, signedHeadersText, signature] = [
      'X-Amz-Algorithm',
      'X-Amz-Credential',
      'X-Amz-Date',
      'X-Amz-Expires',
      'X-Amz-SignedHeaders',
      'X-Amz-Signature',
    ].map(param);
    if (!algorithm || !credentialText || !amzDate || !expiresText || !signedHeadersText || !signature) {
      refuse(
        400,
        'AuthorizationQueryParametersError',
        'Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.',
      );
    }
    if (algorithm !== ALGORITHM) refuse(400, 'AuthorizationQueryParametersError', 'X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
    const when = parseAmzDate(amzDate!);
    if (when === undefined)
      refuse(400, 'AuthorizationQueryParametersError', "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"");
    if (!/^\d+$/.test(expiresText!)) refuse(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires should be a number');
    const expires = Number(expiresText);
    if (expires < 1) refuse(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be non-negative');
    if (expires > MAX_PRESIGN_S)
      refuse(400, 'AuthorizationQueryParametersError', 'X-Amz-Expires must be less than a week (in seconds) that is 604800');
    const credential = this.credential(credentialText!, amzDate!, 'query');
    const secret = this.secretFor(credential);
    const serverTime = new Date(this.now()).toISOString().replace(/\.\d{3}Z$/, 'Z');
    if (when! - this.now() > MAX_SKEW_MS)
      refuse(403, 'AccessDenied', 'Request is not yet valid', { 'X-Amz-Date': amzDate!, ServerTime: serverTime });
    if (this.now() > when! + expires * 1000) {
      refuse(403, 'AccessDenied', 'Request has expired', {
        'X-Amz-Expires': expiresText!,
        Expires: new Date(when! + expires * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z'),
        ServerTime: serverTime,
      });
    }
    const signedHeaders = signedHeaderList(signedHeadersText!);
    this.checkEverySignedAmzHeader(req, signedHeaders);
    // Presigned URLs sign no body unless the signer put a hash in the query.
    const payloadHash = param('X-Amz-Content-Sha256') ?? 'UNSIGNED-PAYLOAD';
    const unsigned = query.filter(([k]) => k !== 'X-Amz-Signature');
    const canonicalRequest = [
      req.method ?? '',
      canonicalUri(rawPath),
      canonicalQuery(unsigned),
      canonicalHeaders(req, signedHeaders),
      signedHeaders.join(';'),
      payloadHash,
    ].join('\n');
    const stringToSign = [ALGORITHM, amzDate, credential.scope, sha256(canonicalRequest)].join('\n');
    const key = signingKey(secret, credential.date, credential.region, credential.service);
    this.compare(hex(hmac(key, stringToSign)), signature!, credential, stringToSign, canonicalRequest);
  }

  private credential(text: string, amzDate: string, where: 'header' | 'query'): Credential {
    const parts = text.split('/');
    const bad = (message: string) =>
      where === 'header'
        ? refuse(400, 'AuthorizationHeaderMalformed', `The authorization header is malformed; ${message}`, { Region: this.region })
        : refuse(400, 'AuthorizationQueryParametersError', `Error parsing the X-Amz-Credential parameter; ${message}`, {
            Region: this.region,
          });
    if (parts.length !== 5) bad('the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".');
    const [accessKeyId, date, region, service, terminator] = parts as [string, string, string, string, string];
    if (date !== amzDate.slice(0, 8))
      bad(`Invalid credential date "${date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
    if (region !== this.region) bad(`the region '${region}' is wrong; expecting '${this.region}'`);
    if (service !== 's3') bad(`incorrect service "${service}". This endpoint belongs to "s3".`);
    if (terminator !== 'aws4_request') bad(`incorrect terminal "${terminator}". This endpoint uses "aws4_request".`);
    return { accessKeyId, date, region, service, terminator, scope: `${date}/${region}/${service}/${terminator}` };
  }

  private secretFor(credential: Credential): string {
    const secret = this.credentials.get(credential.accessKeyId);
    if (secret === undefined)
      refuse(403, 'InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
        AWSAccessKeyId: credential.accessKeyId,
      });
    return secret!;
  }

  /** S3 wants `host` and every x-amz-* header signed (x-amz-content-sha256 excepted only for presigned URLs). */
  private checkEverySignedAmzHeader(req: IncomingMessage, signed: string[]): void {
    if (!signed.includes('host'))
      refuse(403, 'AccessDenied', 'There were headers present in the request which were not signed', { HeadersNotSigned: 'host' });
    const unsigned = Object.keys(req.headers).filter((h) => h.startsWith('x-amz-') && !signed.includes(h));
    if (unsigned.length)
      refuse(403, 'AccessDenied', 'There were headers present in the request which were not signed', {
        HeadersNotSigned: unsigned.join(', '),
      });
  }

  private compare(expected: string, given: string, credential: Credential, stringToSign: string, canonicalRequest: string): void {
    const ok = /^[0-9a-f]{64}$/.test(given) && timingSafeEqual(Buffer.from(expected, 'hex'), Buffer.from(given, 'hex'));
    if (ok) return;
    const bytes = (s: string) => [...Buffer.from(s)].map((b) => b.toString(16).padStart(2, '0')).join(' ');
    refuse(
      403,
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your key and signing method.',
      {
        AWSAccessKeyId: credential.accessKeyId,
        StringToSign: stringToSign,
        SignatureProvided: given,
        StringToSignBytes: bytes(stringToSign),
        CanonicalRequest: canonicalRequest,
        CanonicalRequestBytes: bytes(canonicalRequest),
      },
    );
  }

  /** aws-chunked bodies: `<hex size>\r\n<data>\r\n` ... a zero-size chunk, then `name:value` trailers. */
  private decodeChunked(req: IncomingMessage, raw: Buffer): Payload {
    const encoding = (headerValue(req, 'content-encoding') ?? '').split(',').map((s) => s.trim());
    if (!encoding.includes('aws-chunked'))
      refuse(400, 'InvalidArgument', 'Content-Encoding must include aws-chunked for a streaming payload', {
        ArgumentName: 'Content-Encoding',
      });
    const decodedText = headerValue(req, 'x-amz-decoded-content-length');
    if (decodedText === undefined || !/^\d+$/.test(decodedText))
      refuse(411, 'MissingContentLength', 'You must provide the Content-Length HTTP header.');
    const parts: Buffer[] = [];
    let at = 0;
    const incomplete = () => refuse(400, 'IncompleteBody', 'The request body terminated unexpectedly');
    for (;;) {
      const eol = raw.indexOf('\r\n', at);
      if (eol === -1) incomplete();
      const line = raw.toString('latin1', at, eol);
      const m = /^([0-9a-fA-F]{1,8})$/.exec(line);
      if (!m) refuse(400, 'IncompleteBody', 'The request body terminated unexpectedly');
      const size = parseInt(m![1]!, 16);
      const data = raw.subarray(eol + 2, eol + 2 + size);
      if (data.length !== size) incomplete();
      at = eol + 2 + size;
      if (size === 0) break;
      if (raw.toString('latin1', at, at + 2) !== '\r\n') incomplete();
      at += 2;
      parts.push(data);
    }
    const body = Buffer.concat(parts);
    if (body.length !== Number(decodedText)) incomplete();
    // Trailers: `name:value\r\n` lines, then an empty line; exactly the announced checksum.
    const lines = raw.toString('latin1', at).split('\r\n');
    const malformed = () =>
      refuse(
        400,
        'MalformedTrailerError',
        'The request contained trailing data that was not well-formed or did not conform to our published schema.',
      );
    if (lines.length < 2 || lines.at(-1) !== '' || lines.at(-2) !== '') malformed();
    const trailers = new Map<string, string>();
    for (const l of lines.slice(0, -2)) {
      const colon = l.indexOf(':');
      if (colon < 1) malformed();
      trailers.set(l.slice(0, colon).toLowerCase(), l.slice(colon + 1).trim());
    }
    const announced = headerValue(req, 'x-amz-trailer')?.toLowerCase();
    if (!announced || trailers.size !== 1 || !trailers.has(announced)) malformed();
    for (const [name, value] of trailers) this.checkChecksum(name, value, body, req);
    return { body, trailers };
  }

  private checkChecksum(name: string, value: string, body: Buffer, req: IncomingMessage): void {
    const algorithm = name.replace(/^x-amz-checksum-/, '');
    let computed: string;
    if (algorithm === 'crc32') {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(crc32(body) >>> 0);
      computed = b.toString('base64');
    } else if (algorithm === 'sha1' || algorithm === 'sha256') {
      computed = createHash(algorithm).update(body).digest('base64');
    } else {
      return refuse(501, 'NotImplemented', `This fake does not implement the ${algorithm.toUpperCase()} checksum`);
    }
    const sdkAlgorithm = headerValue(req, 'x-amz-sdk-checksum-algorithm');
    if (sdkAlgorithm && sdkAlgorithm.toLowerCase() !== algorithm)
      refuse(400, 'InvalidRequest', `Value for x-amz-sdk-checksum-algorithm header is invalid.`);
    if (computed !== value) refuse(400, 'BadDigest', `The ${algorithm.toUpperCase()} you specified did not match the calculated checksum.`);
  }

  // ---- operations ----

  private operate(
    req: IncomingMessage,
    res: ServerResponse,
    target: { bucket: string; key: string; rawQuery: string },
    { body, trailers }: Payload,
  ): number {
    const objects = this.buckets.get(target.bucket);
    if (!objects) return refuse(404, 'NoSuchBucket', 'The specified bucket does not exist', { BucketName: target.bucket });
    if (!target.key) return refuse(501, 'NotImplemented', 'This fake implements object operations only');
    const method = req.method ?? '';
    if (method === 'PUT') {
      if (headerValue(req, 'x-amz-copy-source') !== undefined) refuse(501, 'NotImplemented', 'This fake does not implement CopyObject');
      const md5 = headerValue(req, 'content-md5');
      if (md5 !== undefined && createHash('md5').update(body).digest('base64') !== md5)
        refuse(400, 'BadDigest', 'The Content-MD5 you specified did not match what we received.');
      let checksum: StoredObject['checksum'];
      for (const [name, value] of Object.entries(req.headers)) {
        if (name.startsWith('x-amz-checksum-') && name !== 'x-amz-checksum-type' && typeof value === 'string') {
          this.checkChecksum(name, value, body, req);
          checksum = { algorithm: name.slice('x-amz-checksum-'.length), value };
        }
      }
      for (const [name, value] of trailers)
        if (name.startsWith('x-amz-checksum-')) checksum = { algorithm: name.slice('x-amz-checksum-'.length), value };
      const etag = `"${createHash('md5').update(body).digest('hex')}"`;
      objects.set(target.key, {
        body,
        contentType: headerValue(req, 'content-type') ?? 'binary/octet-stream',
        etag,
        lastModified: new Date(this.now()),
        checksum,
      });
      res.writeHead(200, {
        etag,
        ...(checksum && { [`x-amz-checksum-${checksum.algorithm}`]: checksum.value, 'x-amz-checksum-type': 'FULL_OBJECT' }),
      });
      res.end();
      return 200;
    }
    if (method === 'GET' || method === 'HEAD') {
      const o = objects.get(target.key);
      if (!o) return refuse(404, 'NoSuchKey', 'The specified key does not exist.', { Key: target.key });
      const wantsChecksum =
        headerValue(req, 'x-amz-checksum-mode') === 'ENABLED' ||
        parseQuery(target.rawQuery).some(([k, v]) => k === 'x-amz-checksum-mode' && v === 'ENABLED');
      res.writeHead(200, {
        'content-type': o.contentType,
        'content-length': o.body.length,
        etag: o.etag,
        'last-modified': o.lastModified.toUTCString(),
        'accept-ranges': 'bytes',
        ...(wantsChecksum &&
          o.checksum && { [`x-amz-checksum-${o.checksum.algorithm}`]: o.checksum.value, 'x-amz-checksum-type': 'FULL_OBJECT' }),
      });
      res.end(method === 'HEAD' ? undefined : o.body);
      return 200;
    }
    if (method === 'DELETE') {
      // Deleting a key that does not exist succeeds in S3.
      objects.delete(target.key);
      res.writeHead(204);
      res.end();
      return 204;
    }
    return refuse(405, 'MethodNotAllowed', 'The specified method is not allowed against this resource.', {
      Method: method,
      ResourceType: 'OBJECT',
    });
  }
}

// ---- canonical forms ----

/** Query pairs as S3 decodes them (`+` is a space), in the order sent. */
function parseQuery(raw: string): [string, string][] {
  if (!raw) return [];
  return raw
    .split('&')
    .filter(Boolean)
    .map((pair) => {
      const eq = pair.indexOf('=');
      const [k, v] = eq === -1 ? [pair, ''] : [pair.slice(0, eq), pair.slice(eq + 1)];
      try {
        return [decodeURIComponent(k.replace(/\+/g, ' ')), decodeURIComponent(v.replace(/\+/g, ' '))];
      } catch {
        return refuse(400, 'InvalidArgument', 'The query string is malformed');
      }
    });
}

/** S3 encodes each path segment once (no double encoding, no dot-segment removal). */
function canonicalUri(rawPath: string): string {
  return rawPath
    .split('/')
    .map((s) => uriEncode(decodeURIComponent(s)))
    .join('/');
}

function canonicalQuery(pairs: [string, string][]): string {
  return pairs
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function signedHeaderList(text: string): string[] {
  return text.split(';').map((h) => h.trim().toLowerCase());
}

/** Every value of a header (repeats joined by commas), trimmed, inner runs of spaces collapsed. */
function canonicalHeaders(req: IncomingMessage, names: string[]): string {
  return names.map((name) => `${name}:${allValues(req, name).join(',')}\n`).join('');
}

function allValues(req: IncomingMessage, name: string): string[] {
  const values: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    if (req.rawHeaders[i]!.toLowerCase() === name) values.push(req.rawHeaders[i + 1]!.trim().replace(/\s+/g, ' '));
  }
  return values;
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const values = allValues(req, name);
  return values.length ? values.join(',') : undefined;
}

/** `YYYYMMDDTHHMMSSZ` -> ms since the epoch. */
function parseAmzDate(s: string): number | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, se] = m.map(Number) as [number, number, number, number, number, number, number];
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  return Number.isNaN(t) ? undefined : t;
}

function xmlEscape(s: string): string {
  return s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);
}
