// Call recordings: a tenant asks for a call's recording and gets a short-lived signed URL (the bucket's own presigned
// URL, or ours); /api/v1/recordings/<key> serves the local store's files to whoever holds a valid, unexpired URL.
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { LocalRecordingStore } from '../../storage/local-store.js';
import type { App } from '../context.js';
import { principalOf } from '../auth.js';
import { AppError } from '../../lib/errors.js';
import { errorResponses, idParams } from '../schemas.js';

const recordingView = z.object({
  /** Absolute for a bucket; for the local store, absolute when PUBLIC_BASE_URL is set, else relative to this API. */
  url: z.string(),
  expires_at: z.string(),
  duration_ms: z.number().int().nullable(),
});

export function recordingRoutes(app: App, deps: Deps): void {
  app.get(
    '/api/v1/calls/:id/recording',
    {
      config: { auth: 'tenant' },
      schema: {
        tags: ['calls'],
        security: [{ bearer: [] }],
        summary: 'A short-lived download URL for the call’s recording',
        description:
          'Media-stream and browser calls: a stereo WAV (caller left, agent right). LiveKit calls: the room’s Ogg/Opus ' +
          'from LiveKit Egress, when recordings go to a bucket (Egress uploads there). 404 when the call has none.',
        params: idParams,
        response: { 200: recordingView, ...errorResponses },
      },
    },
    async (request) => {
      // Another tenant's call is not found, like one that does not exist.
      const call = await deps.calls.get(principalOf(request).tenantId, request.params.id);
      if (!call.recordingKey) throw new AppError('not_found', 'This call has no recording');
      const ttlMs = deps.config.recordings.urlTtlMs;
      const expiresAt = new Date(Date.now() + ttlMs);
      const url = await deps.recordings.signedUrl(call.recordingKey, ttlMs);
      return { url, expires_at: expiresAt.toISOString(), duration_ms: call.recordingMs };
    },
  );

  app.get(
    '/api/v1/recordings/*',
    {
      // The signature in the URL is the credential: a browser's <audio> element or a download link cannot send a token.
      config: { auth: 'public' },
      schema: {
        tags: ['calls'],
        summary: 'Downloads a recording from the local store with the signed URL the recording endpoint gave',
        params: z.object({ '*': z.string() }),
        description:
          'Answers audio/wav, streamed; one `Range: bytes=` range gives 206 with Content-Range (416 `range_not_satisfiable` outside the file). ' +
          '403 `forbidden` when the link is tampered with or expired, 404 `not_found` when the recording is gone.',
        querystring: z.object({ expires: z.string().max(20).optional(), signature: z.string().max(200).optional() }),
      },
    },
    async (request, reply) => {
      const store = deps.recordings;
      // With a bucket configured, downloads go to the bucket: this route serves nothing.
      if (!(store instanceof LocalRecordingStore)) throw new AppError('not_found', 'Recordings are not served from here');
      const key = request.params['*'];
      const check = store.verifyRecordingUrl(key, request.query.expires, request.query.signature);
      if (check === 'expired') throw new AppError('forbidden', 'This recording link has expired; ask for a new one');
      if (check !== 'valid') throw new AppError('forbidden', 'This recording link is not valid');
      const recording = await store.open(key);
      if (!recording) throw new AppError('not_found', 'Recording not found');
      // Streamed from disk, whole or one byte range (players seek with Range): memory stays flat whatever the size.
      const range = parseRange(request.headers.range, recording.size);
      reply
        .type('audio/wav')
        .header('accept-ranges', 'bytes')
        .header('content-disposition', `inline; filename="${key.split('/').at(-1)}"`)
        .header('cache-control', 'private, no-store')
        .header('x-content-type-options', 'nosniff');
      if (range === 'unsatisfiable') {
        await recording.close();
        reply.header('content-range', `bytes */${recording.size}`);
        throw new AppError('range_not_satisfiable', `The recording has ${recording.size} bytes; the range asked for is outside it`);
      }
      if (range) {
        reply.status(206).header('content-range', `bytes ${range.start}-${range.end}/${recording.size}`);
      }
      reply.header('content-length', range ? range.end - range.start + 1 : recording.size);
      if (request.method === 'HEAD') {
        // Fastify would read a stream to its end to answer a HEAD: the headers are the whole answer.
        await recording.close();
        return reply.send(Readable.from([]));
      }
      return reply.send(recording.stream(range));
    },
  );
}

/**
 * One `bytes=` range of a file of `size` bytes (RFC 9110 14.1.2): undefined for the whole file (no header, or one we
 * ignore as the RFC allows: another unit, several ranges, bad syntax), 'unsatisfiable' when it starts past the end.
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header ? /^bytes=(\d*)-(\d*)$/.exec(header.trim()) : null;
  if (!m || (m[1] === '' && m[2] === '') || m[1]!.length > 15 || m[2]!.length > 15) return undefined;
  if (m[1] === '') {
    // The last N bytes.
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
