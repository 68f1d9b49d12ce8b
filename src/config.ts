// Configuration: the only reader of process.env. Parses and validates every variable once, at start-up.
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { parseAllowEntry } from './lib/outbound.js';
import { PLATFORM_VENDORS, type PlatformCredentials, VENDORS } from './providers/vendors.js';
import type { ExtractLimits } from './rag/extract.js';

const emptyToUndefined = (v: unknown) => (typeof v === 'string' && v.trim() === '' ? undefined : v);
const optionalString = z.preprocess(emptyToUndefined, z.string().optional());
const int = (def: number, min: number, max: number) =>
  z.preprocess(emptyToUndefined, z.coerce.number().int().min(min).max(max).default(def));
/** An integer whose default depends on other variables: undefined when unset. */
const optionalInt = (min: number, max: number) => z.preprocess(emptyToUndefined, z.coerce.number().int().min(min).max(max).optional());
/** A flag whose default depends on other variables: undefined when unset. */
const optionalBool = z.preprocess(
  emptyToUndefined,
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { message: 'must be true or false' })
    .optional()
    .transform((v) => (v === undefined ? undefined : v === 'true' || v === '1' || v === 'yes')),
);
const url = (protocols: string[]) =>
  z.preprocess(
    emptyToUndefined,
    z
      .string()
      .refine(
        (v) => {
          try {
            return protocols.includes(new URL(v).protocol);
          } catch {
            return false;
          }
        },
        `must be a URL starting with ${protocols.map((p) => `${p}//`).join(' or ')}`,
      )
      // How docs/configuration.md (scripts/config-docs.ts) names the type; the refinement above cannot be read back.
      .meta({ type: `URL (${protocols.map((p) => p.slice(0, -1)).join(', ')})` })
      .optional(),
  );

/** proxy-addr's names for whole ranges, accepted in TRUST_PROXY's list next to addresses and CIDRs. */
const PROXY_RANGE_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);
const isAddressOrCidr = (v: string) => {
  const [addr = '', prefix, extra] = v.split('/');
  const family = isIP(addr);
  if (!family || extra !== undefined) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
};
/**
 * Whose X-Forwarded-For to believe: nobody (false), the last N hops (a number), or the listed proxies (addresses,
 * CIDRs, or proxy-addr's range names). `true`, which believes any client's header and so lets anyone pick the IP
 * its rate limits are counted under, is refused.
 */
const trustProxy = z.preprocess(
  emptyToUndefined,
  z
    .string()
    .meta({ type: 'false, a hop count, or a comma list of addresses/CIDRs' })
    .default('false')
    .transform((raw, ctx): TrustProxy => {
      const v = raw.trim().toLowerCase();
      if (['false', 'no', '0'].includes(v)) return false;
      if (['true', 'yes'].includes(v)) {
        ctx.addIssue({
          code: 'custom',
          message:
            "true would believe any client's X-Forwarded-For (anyone could choose the IP its rate limits count); " +
            'give the number of proxies in front of the service (e.g. 1) or their addresses/CIDRs (e.g. 10.0.0.0/8,loopback)',
        });
        return z.NEVER;
      }
      if (/^\d+$/.test(v)) {
        const hops = Number(v);
        if (hops > 10) ctx.addIssue({ code: 'custom', message: 'a hop count must be 0..10' });
        return hops === 0 ? false : hops;
      }
      const list = v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
      const bad = list.filter((x) => !PROXY_RANGE_NAMES.has(x) && !isAddressOrCidr(x));
      if (bad.length || !list.length) {
        ctx.addIssue({
          code: 'custom',
          message: `must be false, a hop count or a list of proxy addresses/CIDRs; not understood: ${bad.join(', ') || raw}`,
        });
        return z.NEVER;
      }
      return list;
    }),
);

/** Every variable the service reads, with its default. `.env.example` documents the same list. */
const envSchema = z.object({
  NODE_ENV: z.preprocess(emptyToUndefined, z.enum(['development', 'production', 'test']).default('development')),
  HOST: z.preprocess(emptyToUndefined, z.string().default('127.0.0.1')),
  PORT: int(8000, 0, 65535),
  DATA_DIR: z.preprocess(emptyToUndefined, z.string().default('./data')),
  LOG_LEVEL: z.preprocess(emptyToUndefined, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  PUBLIC_BASE_URL: url(['http:', 'https:']),
  TRUST_PROXY: trustProxy,
  BODY_LIMIT_BYTES: int(1_048_576, 1024, 1024 * 1024 * 1024),
  /** The web console's build (index.html and assets), served at /; without one, / leads to /docs. */
  CONSOLE_DIR: z.preprocess(emptyToUndefined, z.string().default('web/dist')),

  DATABASE_URL: url(['postgres:', 'postgresql:']),
  DATABASE_POOL_MAX: optionalInt(1, 500),
  EMBEDDED_DB_THREAD: optionalBool,
  BACKGROUND_THREAD: optionalBool,
  MEDIA_PROCESS: optionalBool,
  MIGRATE_ON_START: optionalBool,
  REDIS_URL: url(['redis:', 'rediss:']),
  REDIS_KEY_PREFIX: z.preprocess(emptyToUndefined, z.string().max(100).default('va:')),

  SECRET_KEY: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  SECRET_KEY_PREVIOUS: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .default('')
      .transform((v) =>
        v
          .split(',')
          .map((k) => k.trim())
          .filter(Boolean),
      )
      .refine((keys) => keys.length <= 5, 'at most 5 previous keys')
      .refine((keys) => keys.every((k) => k.length >= 32), 'each key must be at least 32 characters'),
  ),
  JWT_ACCESS_TOKEN_EXPIRE_MINUTES: int(30, 1, 60 * 24),
  JWT_REFRESH_TOKEN_EXPIRE_DAYS: int(30, 1, 365),
  PLATFORM_ADMIN_EMAIL: optionalString.pipe(z.email('must be an email address').optional()),
  PLATFORM_ADMIN_PASSWORD: optionalString.pipe(z.string().min(12, 'must be at least 12 characters').optional()),

  DOCUMENT_MAX_BYTES: int(20 * 1024 * 1024, 1024, 512 * 1024 * 1024),
  INGEST_CONCURRENCY: int(1, 0, 64),
  INGEST_LEASE_SECONDS: int(60, 1, 3600),
  INGEST_MAX_ATTEMPTS: int(6, 1, 100),
  WEBHOOK_DELIVERY_CONCURRENCY: int(8, 0, 256),
  WEBHOOK_LEASE_SECONDS: int(60, 15, 3600),
  WEBHOOK_RETENTION_DAYS: int(7, 1, 3650),
  WEBHOOK_MAX_ENDPOINTS_PER_TENANT: int(20, 1, 1000),
  DOCUMENT_WORKER_MEMORY_MB: int(512, 16, 16_384),
  DOCUMENT_JOB_TIMEOUT_SECONDS: int(120, 1, 3600),
  DOCUMENT_MAX_DECOMPRESSED_BYTES: int(100 * 1024 * 1024, 1024, 4 * 1024 * 1024 * 1024 - 1),
  DOCUMENT_MAX_ZIP_ENTRIES: int(2_000, 1, 1_000_000),
  DOCUMENT_MAX_XML_ELEMENTS: int(2_000_000, 1, 1_000_000_000),
  DOCUMENT_MAX_PDF_PAGES: int(2_000, 1, 1_000_000),
  DOCUMENT_MAX_HTML_NODES: int(500_000, 1, 1_000_000_000),
  DOCUMENT_MAX_HTML_DEPTH: int(500, 1, 1_000_000),
  DOCUMENT_MAX_CHUNKS: int(20_000, 1, 10_000_000),

  RATE_LIMIT_PER_IP_PER_MINUTE: int(600, 1, 1_000_000),
  RATE_LIMIT_PER_TENANT_PER_MINUTE: int(1200, 1, 1_000_000),
  RATE_LIMIT_AUTH_PER_IP_PER_MINUTE: int(10, 1, 1_000_000),
  RATE_LIMIT_LOGIN_PER_EMAIL_PER_15_MINUTES: int(10, 1, 1_000_000),

  LIVEKIT_URL: url(['ws:', 'wss:', 'http:', 'https:']),
  LIVEKIT_API_KEY: optionalString,
  LIVEKIT_API_SECRET: optionalString,
  LIVEKIT_SIP_URI: optionalString,
  TWILIO_ACCOUNT_SID: optionalString.pipe(
    z
      .string()
      .regex(/^AC[0-9a-fA-F]{32}$/, 'must look like AC followed by 32 hex digits')
      .optional(),
  ),
  TWILIO_AUTH_TOKEN: optionalString,
  TWILIO_API_BASE_URL: url(['http:', 'https:']),
  PHONE_NUMBERS_SKIP_VERIFICATION: optionalBool,
  MAX_LIVE_CALLS: int(100, 1, 100_000),
  MAX_LIVE_CALLS_PER_TENANT: int(20, 1, 100_000),
  CALL_CONNECT_TIMEOUT_SECONDS: int(120, 1, 3600),
  CALL_LEASE_SECONDS: int(30, 3, 3600),
  CALL_HEARTBEAT_SECONDS: int(15, 1, 600),
  CHAT_IDLE_TIMEOUT_MINUTES: int(30, 1, 7 * 24 * 60),
  LOCAL_TTS_CONCURRENCY: int(4, 1, 256),
  USAGE_MONTHLY_MINUTES_CAP: int(0, 0, 100_000_000),
  USAGE_MONTHLY_SPEND_CAP_USD: z.preprocess(emptyToUndefined, z.coerce.number().min(0).max(1e9).default(0)),

  METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
  METRICS_TENANT_LABELS: optionalBool,

  RECORDINGS_S3_BUCKET: optionalString,
  RECORDINGS_S3_ENDPOINT: url(['http:', 'https:']),
  RECORDINGS_S3_REGION: z.preprocess(emptyToUndefined, z.string().default('us-east-1')),
  RECORDINGS_S3_ACCESS_KEY_ID: optionalString,
  RECORDINGS_S3_SECRET_ACCESS_KEY: optionalString,
  RECORDINGS_S3_FORCE_PATH_STYLE: optionalBool,
  RECORDING_URL_TTL_SECONDS: int(900, 10, 7 * 86_400),

  OUTBOUND_ALLOW_PRIVATE_NETWORKS: optionalBool,
  /** The older name of OUTBOUND_ALLOW_PRIVATE_NETWORKS (it covered tool URLs only); read when the new one is unset. */
  TOOLS_ALLOW_PRIVATE_NETWORKS: optionalBool,
  OUTBOUND_ALLOW_HOSTS: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .meta({ type: 'comma list of host, host:port or CIDR' })
      .default('')
      .transform((v) =>
        v
          .split(',')
          .map((e) => e.trim())
          .filter(Boolean),
      )
      .superRefine((entries, ctx) => {
        for (const e of entries) {
          const parsed = parseAllowEntry(e);
          if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
        }
      }),
  ),
});

/**
 * Each vendor's platform credential (OPENAI_API_KEY, OPENAI_BASE_URL, ...): the variable names come from the vendor
 * list (providers/vendors.ts), so a new vendor needs no line here.
 */
const vendorEnvSchema = z.object(
  Object.fromEntries(
    PLATFORM_VENDORS.flatMap((v) => {
      const env = VENDORS[v].env;
      return [
        [env.apiKey, optionalString],
        [env.baseUrl, url([...env.baseUrlProtocols])],
      ];
    }),
  ) as Record<string, typeof optionalString>,
);

type Env = z.infer<typeof envSchema>;
/** The schemas of every variable read: docs/configuration.md is generated from them (`npm run docs:config`). */
export const ENV_SCHEMAS = [envSchema, vendorEnvSchema] as const;
/** The names of every variable read; the config test checks `.env.example` documents each. */
export const ENV_VARIABLES = [...Object.keys(envSchema.shape), ...Object.keys(vendorEnvSchema.shape)];

export interface Config {
  env: Env['NODE_ENV'];
  host: string;
  port: number;
  dataDir: string;
  logLevel: Env['LOG_LEVEL'];
  publicBaseUrl: string | undefined;
  /** X-Forwarded-For is believed from: nobody (false), the last N hops, or these proxy addresses/CIDRs. */
  trustProxy: TrustProxy;
  bodyLimitBytes: number;
  /** Absolute path of the web console's build, served at / when it holds an index.html (http/console.ts). */
  consoleDir: string;
  databaseUrl: string | undefined;
  databasePoolMax: number;
  /** The embedded database in a thread of its own (reached through `pg` on a Unix socket), off the event loop. */
  embeddedDbThread: boolean;
  /**
   * Webhook delivery and post-call analysis in a thread of their own (when the database is reachable from one:
   * PostgreSQL, or the embedded database in its thread), off the event loop that carries live calls' audio.
   */
  backgroundThread: boolean;
  /** Twilio media streams (their websockets and the pacing of their audio) in a process of its own (telephony/media-process.ts). */
  mediaProcess: boolean;
  /** Apply pending migrations at start-up (default); false: only check none is pending (`npm run migrate` applies them). */
  migrateOnStart: boolean;
  redisUrl: string | undefined;
  /** Every Redis key and channel starts with it: deployments (or test runs) sharing one Redis stay apart. */
  redisKeyPrefix: string;
  /** SECRET_KEY: signs tokens and URLs, seals secrets at rest. */
  secretKey: string;
  /**
   * The key ring: SECRET_KEY first, then SECRET_KEY_PREVIOUS. Tokens, media tokens and recording URLs signed with
   * any of them verify, and secrets sealed with any of them open; `npm run secrets:rotate` re-seals under the first.
   */
  secretKeys: [string, ...string[]];
  accessTokenTtlMs: number;
  refreshTokenTtlMs: number;
  platformAdmin: { email: string; password: string | undefined } | undefined;
  documentMaxBytes: number;
  /** Documents one instance ingests at a time; 0 runs no ingestion worker in this instance. */
  ingest: { concurrency: number; leaseMs: number; maxAttempts: number };
  /**
   * Webhook delivery: requests in flight per instance (0 runs no delivery worker here), how long a claim lasts
   * before another instance takes it over, how long finished deliveries are kept, endpoints per tenant.
   */
  webhooks: { concurrency: number; leaseMs: number; retentionMs: number; maxEndpointsPerTenant: number };
  /**
   * Document work (extraction, chunking, local embedding) runs in worker threads, one per ingestion slot: each
   * with a heap cap and a time budget per job, and these limits on what one document may make it do.
   */
  documentWork: { workerMemoryMb: number; jobTimeoutMs: number; limits: ExtractLimits; maxChunks: number };
  rateLimits: {
    perIpPerMinute: number;
    perTenantPerMinute: number;
    authPerIpPerMinute: number;
    loginPerEmailPer15Minutes: number;
  };
  livekit: { url?: string; apiKey?: string; apiSecret?: string; sipUri?: string };
  twilio: { accountSid?: string; authToken?: string; apiBaseUrl?: string };
  /**
   * Register phone numbers without checking they are incoming numbers of the Twilio account. Unset: on except in
   * production, so development (the README's walkthrough) works without a Twilio account.
   */
  phoneNumbersSkipVerification: boolean;
  /** Recordings go to the data folder, or to an S3-compatible bucket when one is configured. */
  recordings: {
    dir: string;
    /** Recordings being made: each call's WAV grows here until it is stored (the data folder, or the system's temp folder). */
    spoolDir: string;
    urlTtlMs: number;
    s3:
      | { bucket: string; endpoint?: string; region: string; accessKeyId?: string; secretAccessKey?: string; forcePathStyle: boolean }
      | undefined;
  };
  /**
   * The platform's key per vendor, and where its API is (a proxy, an OpenAI-compatible server, a local fake; unset:
   * the vendor's own). A tenant's own key in its settings takes precedence.
   */
  credentials: PlatformCredentials;
  /**
   * Requests to URLs a tenant chose (tools, an OpenAI-compatible base URL): whether they may reach loopback, private
   * and link-local addresses (our own network, seen from our servers; off in production unless set), and the hosts
   * or ranges allowed anyway (an in-cluster Ollama). lib/outbound.ts applies it.
   */
  outbound: { allowPrivateNetworks: boolean; allowHosts: string[] };
  /**
   * Live calls: how many one instance admits, and one tenant; how long an admitted call may take to connect its
   * media (its place, and its web-call token, last that long; a call still without media is then ended); how long a
   * chat session may stay silent before it is ended.
   */
  calls: {
    maxLive: number;
    maxLivePerTenant: number;
    connectTimeoutMs: number;
    chatIdleTimeoutMs: number;
    leaseMs: number;
    /**
     * How often an instance marks its live calls alive; a call unmarked for 6 beats belongs to a stopped instance
     * and is ended by the sweep every instance runs every 2 beats.
     */
    heartbeatMs: number;
  };
  /**
   * GET /metrics (Prometheus): the bearer token that may scrape it (unset: the route answers 404), and whether call
   * counters carry a tenant_id label (off: a label per tenant is an unbounded number of series).
   */
  metrics: { token: string | undefined; tenantLabels: boolean };
  /** espeak-ng processes one instance runs at once; calls' sentences wait their turn beyond that. */
  localTtsConcurrency: number;
  /**
   * Every tenant's monthly caps unless the platform admin set its own (0: no cap): minutes of calls, and USD the
   * platform bills (services/usage.ts). At a cap new calls are refused; calls in progress finish.
   */
  usage: { monthlyMinutesCap: number; monthlySpendCapUsd: number };
}

export type TrustProxy = false | number | string[];

export class ConfigError extends Error {}

/** Parses an environment (process.env by default). Throws ConfigError naming every bad variable. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  const parsed = envSchema.safeParse(source);
  const vendorEnv = vendorEnvSchema.safeParse(source);
  if (!parsed.success || !vendorEnv.success) {
    const issues = [...(parsed.error?.issues ?? []), ...(vendorEnv.error?.issues ?? [])];
    const lines = issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const v = vendorEnv.data;
  // Twilio and LiveKit are handed absolute URLs of ours (webhooks, media streams): in production they come from
  // PUBLIC_BASE_URL alone, never from a request's Host header or a guess from the listening address.
  const twilio = Boolean(e.TWILIO_ACCOUNT_SID && e.TWILIO_AUTH_TOKEN);
  const livekit = Boolean(e.LIVEKIT_URL && e.LIVEKIT_API_KEY && e.LIVEKIT_API_SECRET);
  if (e.NODE_ENV === 'production' && !e.PUBLIC_BASE_URL && (twilio || livekit)) {
    throw new ConfigError(
      `Invalid configuration:\n  PUBLIC_BASE_URL: required when NODE_ENV=production and ${twilio ? 'Twilio' : 'LiveKit'} is configured ` +
        '(the URL Twilio and browsers reach this service at, e.g. https://voice.example.com)',
    );
  }
  // memory:// keeps the embedded database in memory (tests, throw-away demos).
  const dataDir = e.DATA_DIR === 'memory://' ? e.DATA_DIR : path.resolve(e.DATA_DIR);
  const secretKey = e.SECRET_KEY ?? developmentSecretKey(e.NODE_ENV, dataDir);
  if (e.SECRET_KEY_PREVIOUS.includes(secretKey) || new Set(e.SECRET_KEY_PREVIOUS).size !== e.SECRET_KEY_PREVIOUS.length) {
    throw new ConfigError(
      'Invalid configuration:\n  SECRET_KEY_PREVIOUS: lists SECRET_KEY or a key twice (it holds the keys SECRET_KEY replaced, ' +
        'newest first, comma-separated)',
    );
  }
  return {
    env: e.NODE_ENV,
    host: e.HOST,
    port: e.PORT,
    dataDir,
    logLevel: e.LOG_LEVEL,
    publicBaseUrl: e.PUBLIC_BASE_URL?.replace(/\/+$/, ''),
    trustProxy: e.TRUST_PROXY,
    bodyLimitBytes: e.BODY_LIMIT_BYTES,
    consoleDir: path.resolve(e.CONSOLE_DIR),
    databaseUrl: e.DATABASE_URL,
    // PostgreSQL's connections are processes of the server, shared by every instance (max_connections, 100 by
    // default): 10 each. The embedded database thread's are sockets to our own server, which runs one statement at a
    // time whatever their number. A connection is held for its round trip's wait on the busy event loop (tens of ms
    // at 150 calls on one core), not only for the statement's 1 to 3 ms: with 10, at 150 calls two fifths to a half
    // of the statements waited over 100 ms for a connection, the knowledge search too; with 100, 1 to 2%. Five A/B
    // pairs of bench:calls: retrieval p95 0.17-4.2 s -> 0.12-0.37 s, greeting p50 1.2-2.5 s -> 0.45-0.81 s.
    databasePoolMax: e.DATABASE_POOL_MAX ?? (e.DATABASE_URL ? 10 : 100),
    // In a thread by default: at 50 calls on one core it took late frames as sent from 655 to 181 (bench:calls).
    embeddedDbThread: e.EMBEDDED_DB_THREAD ?? true,
    backgroundThread: e.BACKGROUND_THREAD ?? true,
    mediaProcess: e.MEDIA_PROCESS ?? true,
    migrateOnStart: e.MIGRATE_ON_START ?? true,
    redisUrl: e.REDIS_URL,
    redisKeyPrefix: e.REDIS_KEY_PREFIX,
    secretKey,
    secretKeys: [secretKey, ...e.SECRET_KEY_PREVIOUS],
    accessTokenTtlMs: e.JWT_ACCESS_TOKEN_EXPIRE_MINUTES * 60_000,
    refreshTokenTtlMs: e.JWT_REFRESH_TOKEN_EXPIRE_DAYS * 86_400_000,
    platformAdmin: e.PLATFORM_ADMIN_EMAIL
      ? { email: e.PLATFORM_ADMIN_EMAIL.toLowerCase(), password: e.PLATFORM_ADMIN_PASSWORD }
      : undefined,
    documentMaxBytes: e.DOCUMENT_MAX_BYTES,
    ingest: { concurrency: e.INGEST_CONCURRENCY, leaseMs: e.INGEST_LEASE_SECONDS * 1000, maxAttempts: e.INGEST_MAX_ATTEMPTS },
    webhooks: {
      concurrency: e.WEBHOOK_DELIVERY_CONCURRENCY,
      leaseMs: e.WEBHOOK_LEASE_SECONDS * 1000,
      retentionMs: e.WEBHOOK_RETENTION_DAYS * 86_400_000,
      maxEndpointsPerTenant: e.WEBHOOK_MAX_ENDPOINTS_PER_TENANT,
    },
    documentWork: {
      workerMemoryMb: e.DOCUMENT_WORKER_MEMORY_MB,
      jobTimeoutMs: e.DOCUMENT_JOB_TIMEOUT_SECONDS * 1000,
      limits: {
        maxDecompressedBytes: e.DOCUMENT_MAX_DECOMPRESSED_BYTES,
        maxZipEntries: e.DOCUMENT_MAX_ZIP_ENTRIES,
        maxXmlElements: e.DOCUMENT_MAX_XML_ELEMENTS,
        maxPdfPages: e.DOCUMENT_MAX_PDF_PAGES,
        maxHtmlNodes: e.DOCUMENT_MAX_HTML_NODES,
        maxHtmlDepth: e.DOCUMENT_MAX_HTML_DEPTH,
      },
      maxChunks: e.DOCUMENT_MAX_CHUNKS,
    },
    rateLimits: {
      perIpPerMinute: e.RATE_LIMIT_PER_IP_PER_MINUTE,
      perTenantPerMinute: e.RATE_LIMIT_PER_TENANT_PER_MINUTE,
      authPerIpPerMinute: e.RATE_LIMIT_AUTH_PER_IP_PER_MINUTE,
      loginPerEmailPer15Minutes: e.RATE_LIMIT_LOGIN_PER_EMAIL_PER_15_MINUTES,
    },
    livekit: {
      url: e.LIVEKIT_URL,
      apiKey: e.LIVEKIT_API_KEY,
      apiSecret: e.LIVEKIT_API_SECRET,
      sipUri: e.LIVEKIT_SIP_URI,
    },
    twilio: { accountSid: e.TWILIO_ACCOUNT_SID, authToken: e.TWILIO_AUTH_TOKEN, apiBaseUrl: e.TWILIO_API_BASE_URL?.replace(/\/+$/, '') },
    recordings: {
      dir: dataDir === 'memory://' ? 'memory://' : path.join(dataDir, 'recordings'),
      spoolDir: dataDir === 'memory://' ? path.join(os.tmpdir(), 'voice-agent-recordings') : path.join(dataDir, 'recordings', '.spool'),
      urlTtlMs: e.RECORDING_URL_TTL_SECONDS * 1000,
      s3: e.RECORDINGS_S3_BUCKET
        ? {
            bucket: e.RECORDINGS_S3_BUCKET,
            endpoint: e.RECORDINGS_S3_ENDPOINT,
            region: e.RECORDINGS_S3_REGION,
            accessKeyId: e.RECORDINGS_S3_ACCESS_KEY_ID,
            secretAccessKey: e.RECORDINGS_S3_SECRET_ACCESS_KEY,
            forcePathStyle: e.RECORDINGS_S3_FORCE_PATH_STYLE ?? false,
          }
        : undefined,
    },
    credentials: Object.fromEntries(
      PLATFORM_VENDORS.map((name) => [name, { apiKey: v[VENDORS[name].env.apiKey], baseUrl: v[VENDORS[name].env.baseUrl] }]),
    ),
    outbound: {
      allowPrivateNetworks: e.OUTBOUND_ALLOW_PRIVATE_NETWORKS ?? e.TOOLS_ALLOW_PRIVATE_NETWORKS ?? e.NODE_ENV !== 'production',
      allowHosts: e.OUTBOUND_ALLOW_HOSTS,
    },
    phoneNumbersSkipVerification: e.PHONE_NUMBERS_SKIP_VERIFICATION ?? e.NODE_ENV !== 'production',
    calls: {
      maxLive: e.MAX_LIVE_CALLS,
      maxLivePerTenant: e.MAX_LIVE_CALLS_PER_TENANT,
      connectTimeoutMs: e.CALL_CONNECT_TIMEOUT_SECONDS * 1000,
      chatIdleTimeoutMs: e.CHAT_IDLE_TIMEOUT_MINUTES * 60_000,
      leaseMs: e.CALL_LEASE_SECONDS * 1000,
      heartbeatMs: e.CALL_HEARTBEAT_SECONDS * 1000,
    },
    metrics: { token: e.METRICS_TOKEN, tenantLabels: e.METRICS_TENANT_LABELS ?? false },
    localTtsConcurrency: e.LOCAL_TTS_CONCURRENCY,
    usage: { monthlyMinutesCap: e.USAGE_MONTHLY_MINUTES_CAP, monthlySpendCapUsd: e.USAGE_MONTHLY_SPEND_CAP_USD },
  };
}

/**
 * Outside production a missing SECRET_KEY is generated once and kept in the data folder, so tokens and
 * encrypted settings survive restarts. Production must be given one: a key that silently changes would
 * log everybody out and make stored provider keys unreadable.
 */
function developmentSecretKey(env: Env['NODE_ENV'], dataDir: string): string {
  if (env === 'production') {
    throw new ConfigError(
      'Invalid configuration:\n  SECRET_KEY: required when NODE_ENV=production (at least 32 characters; ' +
        'it signs tokens and encrypts stored provider keys, so it must stay the same across restarts)',
    );
  }
  const file = path.join(dataDir, 'secret_key');
  if (existsSync(file)) {
    const key = readFileSync(file, 'utf8').trim();
    if (key.length >= 32) return key;
  }
  mkdirSync(dataDir, { recursive: true });
  const key = randomBytes(48).toString('base64url');
  writeFileSync(file, `${key}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return key;
}

/**
 * What production should not run with but may (so it is said, not refused): one line each, logged at start-up.
 * Unsafe combinations (no SECRET_KEY; Twilio or LiveKit without PUBLIC_BASE_URL) are refused by loadConfig instead.
 */
export function productionWarnings(config: Pick<Config, 'env' | 'host' | 'databaseUrl'>): string[] {
  if (config.env !== 'production') return [];
  const warnings: string[] = [];
  if (config.host === '127.0.0.1' || config.host === 'localhost' || config.host === '::1') {
    warnings.push(`HOST is ${config.host}: only this machine can reach the service; set HOST=0.0.0.0 behind a proxy or in a container`);
  }
  if (!config.databaseUrl) {
    warnings.push(
      'the embedded database (PGlite in DATA_DIR) is running in production: one process, no replicas or managed backups; set DATABASE_URL to a PostgreSQL server with pgvector',
    );
  }
  return warnings;
}
