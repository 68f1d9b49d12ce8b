// The Fastify app: logging, request ids, error envelope, rate limits, authentication, OpenAPI, and the
// explicit list of route modules.
import { randomUUID } from 'node:crypto';
import fastifyCookie from '@fastify/cookie';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import fastifyWebsocket from '@fastify/websocket';
import { keepUpgrades } from './upgrades.js';
import Fastify, { type FastifyError, type FastifyReply, type FastifyRequest } from 'fastify';
import {
  jsonSchemaTransform,
  jsonSchemaTransformObject,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import type { TrustProxy } from '../config.js';
import type { Deps } from '../deps.js';
import { errSerializer } from '../lib/error-log.js';
import { findUnsafeInput } from '../lib/safe-input.js';
import { AppError, unsafeInputError } from '../lib/errors.js';
import { Authenticator } from './auth.js';
import type { App, HttpDeps } from './context.js';
import { consoleRoutes } from './console.js';
import { classify } from './errors.js';
import { RateLimiter } from './rate-limit.js';
import { adminRoutes } from './routes/admin.js';
import { apiKeyRoutes } from './routes/api-keys.js';
import { authRoutes } from './routes/auth.js';
import { callRoutes } from './routes/calls.js';
import { chatRoutes } from './routes/chat.js';
import { documentRoutes } from './routes/documents.js';
import { healthRoutes } from './routes/health.js';
import { metricsRoutes } from './routes/metrics.js';
import { knowledgeRoutes } from './routes/knowledge.js';
import { liveKitRoutes } from './routes/livekit.js';
import { phoneNumberRoutes } from './routes/phone-numbers.js';
import { recordingRoutes } from './routes/recordings.js';
import { settingsRoutes } from './routes/settings.js';
import { twilioRoutes } from './routes/twilio.js';
import { usageRoutes } from './routes/usage.js';
import { userRoutes } from './routes/users.js';
import { webhookRoutes } from './routes/webhooks.js';

/** Websocket messages: JSON control and text, or a few hundred ms of audio; anything bigger is refused. */
const WS_MAX_MESSAGE_BYTES = 256 * 1024;

export type { App } from './context.js';

const MINUTE_MS = 60_000;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** Never logged: credentials in headers and bodies. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.password',
  '*.access_token',
  '*.refresh_token',
  '*.key',
];

/**
 * Fastify's trustProxy from TRUST_PROXY. A hop count trusts the last N addresses in the chain (the socket's peer,
 * then X-Forwarded-For from the right), so the client is the entry our own proxy appended and whatever the client
 * wrote to the left of it is ignored. Written as a function: Fastify 5 treats a bare number as "trust nobody".
 */
export function trustProxyOption(trust: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return trust;
}

/**
 * Query parameters whose values are credentials (a media websocket's `token`, a recording link's `signature`, a
 * presigned URL's X-Amz-*): never logged, since a log line would otherwise be a working link or a call's audio.
 */
const SECRET_QUERY_PARAM =
  /^(?:token|signature|access_token|refresh_token|api_key|key|secret|password|x-amz-signature|x-amz-credential|x-amz-security-token)$/i;

/** A URL as logged: the values of secret query parameters replaced. */
export function redactUrl(url: string): string {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const query = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      let decoded = name;
      try {
        decoded = decodeURIComponent(name);
      } catch {
        // A malformed name is logged as it came.
      }
      return eq >= 0 && SECRET_QUERY_PARAM.test(decoded) ? `${name}=[redacted]` : pair;
    });
  return `${url.slice(0, q)}?${query.join('&')}`;
}

/** The request as its log lines show it (Fastify's default fields), with secret query values redacted. */
function requestForLog(req: FastifyRequest) {
  return { method: req.method, url: redactUrl(req.url), host: req.host, remoteAddress: req.ip, remotePort: req.socket?.remotePort };
}

/** Serializers of every log line (main.ts and the tests' logger): errors without query parameter values. */
export const LOG_SERIALIZERS = { err: errSerializer };

export async function buildApp(domain: Deps): Promise<App> {
  const { config } = domain;
  // The HTTP-only dependencies: built here so that deps.ts (the composition root of the domain) knows nothing of HTTP.
  // Added to the same object, not a copy: a dependency swapped on it later (tests do) is what the routes see.
  const deps: HttpDeps = Object.assign(domain, {
    rateLimiter: new RateLimiter(domain.cache, domain.log),
    authenticator: new Authenticator(domain.tokens, domain.accounts, domain.apiKeys),
  });
  const app = Fastify({
    loggerInstance: deps.log,
    // Every request's logger: the request line without credentials in its query string.
    childLoggerFactory: (logger, bindings, opts) =>
      logger.child(bindings, { ...opts, serializers: { ...opts.serializers, req: requestForLog } }),
    trustProxy: trustProxyOption(config.trustProxy),
    bodyLimit: config.bodyLimitBytes,
    // Server timeouts live here, in one place.
    connectionTimeout: 30_000,
    requestTimeout: 60_000,
    keepAliveTimeout: 72_000,
    return503OnClosing: true,
    // Errors the router raises before any route runs (bad URL encoding, an over-long path parameter) get the
    // same envelope as everything else.
    frameworkErrors: (err, request, reply: FastifyReply) => {
      const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
      const code = tooLong ? 'uri_too_long' : 'bad_request';
      const message = tooLong ? 'A path parameter is too long' : 'The URL is malformed';
      void reply
        .status(tooLong ? 414 : 400)
        .header('x-request-id', request.id)
        .type('application/json')
        .send(JSON.stringify({ error: { code, message, request_id: request.id } }));
    },
    // A caller's request id is kept when it is safe to log; otherwise we make one.
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
  }).withTypeProvider<ZodTypeProvider>() as unknown as App;

  // An /api route that forgets to declare its access level must not silently become public: refuse to start.
  app.addHook('onRoute', (route) => {
    if (route.url.startsWith('/api/') && route.config?.auth === undefined) {
      throw new Error(`route ${route.method} ${route.url} does not declare config.auth`);
    }
  });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest('principal', null);
  // The API speaks JSON; routes that take forms or files register their own parser.
  app.removeContentTypeParser('text/plain');

  // Before the plugin's listener: a route may hand its connection on before the handshake (http/upgrades.ts).
  keepUpgrades(app.server);
  // Before our own onRequest hook: the plugin's hooks must see a refused upgrade too, to close its socket.
  await app.register(fastifyWebsocket, {
    options: {
      maxPayload: WS_MAX_MESSAGE_BYTES,
      // A browser sends its token as the subprotocols `bearer, <token>`; the handshake must pick one of them.
      handleProtocols: (protocols) => (protocols.has('bearer') ? 'bearer' : false),
    },
  });

  // Cookies are parsed for the browser's refresh cookie (http/session-cookie.ts); nothing else reads them.
  await app.register(fastifyCookie);

  app.addHook('onRequest', async (request, reply) => {
    reply.header('x-request-id', request.id);
    const { rateLimits } = config;
    if (request.routeOptions.config.rateLimit !== 'signed') await deps.rateLimiter.perIp(reply, request.ip, rateLimits.perIpPerMinute);
    if (request.routeOptions.config.rateLimit === 'auth') {
      await deps.rateLimiter.enforce(reply, `auth:${request.ip}`, rateLimits.authPerIpPerMinute, MINUTE_MS);
    } else if (request.routeOptions.config.rateLimit === 'refresh') {
      await deps.rateLimiter.beforeRefresh(reply, request.ip, rateLimits.authPerIpPerMinute);
    }
    await deps.authenticator.authenticate(request);
    if (request.principal) await deps.rateLimiter.perTenant(reply, request.principal.tenantId, rateLimits.perTenantPerMinute);
  });

  // Every body, query string and path parameter of every route, before any schema sees it: text PostgreSQL cannot
  // store (NUL, unpaired surrogates) and nesting recursive validators cannot walk are a 422 here (lib/safe-input.ts).
  app.addHook('preValidation', async (request) => {
    for (const [where, value] of [
      ['body', request.body],
      ['querystring', request.query],
      ['params', request.params],
    ] as const) {
      const issue = findUnsafeInput(value);
      if (issue) throw unsafeInputError(where, issue);
    }
  });

  app.setErrorHandler((err: FastifyError, request, reply) => {
    const { status, code, message, details } = classify(err, config.env === 'development');
    if (status >= 500) request.log.error({ err }, 'request failed');
    else request.log.info({ code, status }, 'request rejected');
    const body: Record<string, unknown> = { code, message, request_id: request.id };
    if (err instanceof AppError && err.retryAfterS !== undefined) reply.header('retry-after', err.retryAfterS);
    if (details) body.details = details;
    return reply
      .status(status)
      .type('application/json')
      .send(JSON.stringify({ error: body }));
  });

  // The onRequest hook above (rate limits included) also runs for unknown routes.
  app.setNotFoundHandler(async (request) => {
    throw new AppError('not_found', `No route ${request.method} ${request.url.split('?')[0]}`);
  });

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Voice Agent Platform API', version: '0.1.0', description: API_DESCRIPTION },
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An access token (JWT) or a tenant API key (vak_...)' },
          metrics_token: { type: 'http', scheme: 'bearer', description: 'The operator’s METRICS_TOKEN (GET /metrics only)' },
        },
      },
    },
    transform: jsonSchemaTransform,
    // Named schemas (the recursive ones must be) become components that the paths refer to.
    transformObject: jsonSchemaTransformObject,
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true }, config: { auth: 'public' } }, async () => app.swagger());
  // Someone opening the service's address lands on the docs (the console will take / over once it exists).
  app.get('/', { schema: { hide: true }, config: { auth: 'public' } }, async (_request, reply) => reply.redirect('/docs', 302));

  healthRoutes(app, deps);
  metricsRoutes(app, deps);
  authRoutes(app, deps);
  apiKeyRoutes(app, deps);
  userRoutes(app, deps);
  settingsRoutes(app, deps);
  adminRoutes(app, deps);
  // Its own scope: the multipart parser it registers stays on the document routes.
  await app.register(async (scope) => documentRoutes(scope as App, deps));
  knowledgeRoutes(app, deps);
  callRoutes(app, deps);
  recordingRoutes(app, deps);
  phoneNumberRoutes(app, deps);
  chatRoutes(app, deps);
  webhookRoutes(app, deps);
  usageRoutes(app, deps);
  // Registers its webhook in a scope of its own, where JSON bodies stay raw for the signature check.
  await liveKitRoutes(app, deps);
  await twilioRoutes(app, deps);
  // Last: the console answers only what no route above does (and `/`).
  await consoleRoutes(app, config);

  await app.ready();
  return app;
}

/** The top of /docs: how to authenticate and where to start (Markdown, as OpenAPI's info.description allows). */
const API_DESCRIPTION = `A multi-tenant voice agent: phone and browser calls answered from the tenant's documents.

**Authenticate.** \`POST /api/v1/auth/signup\` (email, password, tenant_name) or \`POST /api/v1/auth/login\` returns an
\`access_token\` (a JWT, short-lived) and a \`refresh_token\` (\`POST /api/v1/auth/refresh\`). Send
\`Authorization: Bearer <access_token>\`; press **Authorize** above to try requests here. For servers, create an API
key (\`POST /api/v1/api-keys\`, shown once, \`vak_...\`) and send it the same way.

**Where to start.** 1. Add knowledge: \`POST /api/v1/documents\` (JSON text or a file). 2. Shape the agent:
\`PUT /api/v1/settings/tenant\` (greeting, prompt, the STT/LLM/TTS providers and their keys; local engines by default).
3. Talk to it: \`POST /api/v1/chat\` (text), \`POST /api/v1/calls/web\` (a browser call), or register a Twilio
number (\`POST /api/v1/phone-numbers\`) and call it. 4. Read what happened: \`GET /api/v1/calls\`, each call's
transcript and events; or receive them with webhooks (\`POST /api/v1/webhooks\`).

**Errors** are \`{ error: { code, message, request_id } }\` with a stable \`code\`; a 422 names the field in
\`details\`. Another tenant's resource answers 404, exactly like a missing one.`;
