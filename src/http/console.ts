// The web console (the single-page app built into CONSOLE_DIR, web/dist by default), served at / with its security
// headers: files as they are, any other page path as index.html (the app routes in the browser), the API untouched.
import { readFile, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import fastifyStatic from '@fastify/static';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config.js';
import type { App } from './context.js';
import { publicBaseUrl } from './public-url.js';

/** Paths that are never the console's, even when nothing else answers them: their 404 stays the API's JSON. */
const RESERVED = /^\/(?:api|docs|health|metrics|openapi\.json)(?:[/?#]|$)/;
/** Vite's output for content-hashed files (build.assetsDir): a changed file gets a new name, so it may be kept a year. */
const HASHED_ASSETS = 'assets/';
/** A Host that can be written into the CSP as it is (no `;`, spaces or quotes that would add a directive). */
const PLAIN_HOST = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The console's Content-Security-Policy. Scripts only from our origin (Vite emits no inline script in production);
 * styles also inline, because Mantine writes its CSS variables in <style> elements and style props as style
 * attributes; the audio of the Talk page and recordings may be blob: URLs, and a recording may come from the
 * bucket; connections to our origin, websockets included (named explicitly for browsers whose 'self' does not cover
 * ws:/wss:), and the web-call socket, whose stream_url is built from PUBLIC_BASE_URL or the address we listen on
 * (a page opened at http://localhost:8000 gets ws://127.0.0.1:8000/...). An AudioWorklet is a script to CSP (script-src, not worker-src): load its module from our origin
 * (a built asset), not from a blob: URL.
 */
export function consoleCsp(host: string, s3: Config['recordings']['s3'], streamOrigin?: string): string {
  const sockets = PLAIN_HOST.test(host) ? [`ws://${host}`, `wss://${host}`] : [];
  if (streamOrigin && !sockets.includes(streamOrigin)) sockets.push(streamOrigin);
  const self = sockets.map((s) => ` ${s}`).join('');
  const bucket = s3 ? ` ${bucketOrigins(s3).join(' ')}` : '';
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    `connect-src 'self'${self}`,
    `media-src 'self' blob:${bucket}`,
    "worker-src 'self' blob:",
    "manifest-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Where a presigned recording URL points: the configured endpoint (path or virtual-host style), or AWS S3. */
function bucketOrigins(s3: NonNullable<Config['recordings']['s3']>): string[] {
  if (!s3.endpoint) return ['https://*.amazonaws.com'];
  const u = new URL(s3.endpoint);
  return [u.origin, `${u.protocol}//*.${u.host}`];
}

export function setConsoleHeaders(request: FastifyRequest, reply: FastifyReply, config: Config): void {
  const stream = new URL(publicBaseUrl({ config }, request).replace(/^http/, 'ws')).origin;
  reply.header('content-security-policy', consoleCsp(request.host, config.recordings.s3, stream));
  reply.header('x-content-type-options', 'nosniff');
  reply.header('referrer-policy', 'no-referrer');
  reply.header('x-frame-options', 'DENY');
  reply.header('cross-origin-opener-policy', 'same-origin');
  reply.header('cross-origin-resource-policy', 'same-origin');
  // The Talk page needs the microphone; nothing needs the rest.
  reply.header('permissions-policy', 'microphone=(self), camera=(), geolocation=(), payment=(), usb=()');
  if (request.protocol === 'https') reply.header('strict-transport-security', 'max-age=31536000');
}

/**
 * Serves the console when CONSOLE_DIR holds a build (index.html). Without one, nothing is registered but the
 * fallback of `/` to the API docs, which gives way to any route that answers `/` itself.
 */
export async function consoleRoutes(app: App, config: Config): Promise<void> {
  const dir = config.consoleDir;
  const index = path.join(dir, 'index.html');
  const available = existsSync(index);

  const sendIndex = async (request: FastifyRequest, reply: FastifyReply) => {
    setConsoleHeaders(request, reply, config);
    // Always asked again (a new build names new assets); it is a few hundred bytes.
    return reply
      .header('cache-control', 'no-cache')
      .type('text/html; charset=utf-8')
      .send(await readFile(index));
  };

  // `/` is decided here, before routing is acted on, so the console wins over any other route for `/` (a redirect
  // to /docs) when it is built, and such a route answers when it is not.
  app.addHook('onRequest', async (request, reply) => {
    if ((request.method !== 'GET' && request.method !== 'HEAD') || request.url.split('?')[0] !== '/') return;
    if (available) return sendIndex(request, reply);
    if (request.routeOptions.url !== '/') return reply.redirect('/docs');
  });
  if (!available) {
    app.log.info({ dir }, 'no console build: / leads to /docs');
    return;
  }

  await app.register(async (scope) => {
    // reply.sendFile only (ranges, ETag, Last-Modified, traversal and dotfile checks); the routes are ours.
    await scope.register(fastifyStatic, { root: dir, serve: false, dotfiles: 'deny', index: false });
    scope.get('/*', { schema: { hide: true }, config: { auth: 'public' } }, async (request, reply) => {
      const rel = (request.params as { '*': string })['*'];
      const urlPath = `/${rel}`;
      if (RESERVED.test(urlPath)) return reply.callNotFound();
      if (rel && rel !== 'index.html' && (await isFileIn(dir, rel))) {
        setConsoleHeaders(request, reply, config);
        if (rel.startsWith(HASHED_ASSETS)) return reply.sendFile(urlPath, { maxAge: '365d', immutable: true });
        return reply.header('cache-control', 'no-cache').sendFile(urlPath, { cacheControl: false });
      }
      // A page of the app (/calls/123): the browser's router takes it from index.html. Anything else (a script's
      // fetch of a missing file) is a plain 404.
      if (!(request.headers.accept ?? '').includes('text/html')) return reply.callNotFound();
      return sendIndex(request, reply);
    });
  });
}

async function isFileIn(dir: string, rel: string): Promise<boolean> {
  const file = path.resolve(dir, rel);
  if (!file.startsWith(dir + path.sep)) return false;
  return (await stat(file).catch(() => undefined))?.isFile() ?? false;
}
