// Drizzle schema: every table of the service. Migrations in ./migrations are generated from this file.
import { sql } from 'drizzle-orm';
import {
  type AnyPgColumn,
  bigserial,
  boolean,
  check,
  customType,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';
// Types only: the JSON columns hold what these schemas check on the way in (services/settings-schema.ts).
import type { AgentOverrides, StoredTenantSettings } from '../services/settings-schema.js';
import type { StoredCitation } from '../lib/citation.js';

/**
 * pgvector without a fixed dimension: one table holds vectors of every embedding model, and each dimension in use
 * gets its own partial HNSW index on `embedding::vector(N)` (see migration 0003).
 */
const anyVector = customType<{ data: number[]; driverData: string }>({
  dataType: () => 'vector',
  toDriver: (v) => `[${v.join(',')}]`,
  fromDriver: (v) => JSON.parse(v) as number[],
});
const tsvector = customType<{ data: string }>({ dataType: () => 'tsvector' });
/** pgvector's sparse vector, written and read as its text form (`{id:weight,...}/dimensions`): rag/bm25.ts. */
const sparsevec = customType<{ data: string }>({ dataType: () => 'sparsevec' });
/** Raw bytes; PGlite hands back a Uint8Array and node-postgres a Buffer, both become a Buffer. */
const bytea = customType<{ data: Buffer; driverData: Uint8Array }>({
  dataType: () => 'bytea',
  fromDriver: (v) => Buffer.from(v),
});

const id = () => uuid('id').primaryKey().defaultRandom();
const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();
const updatedAt = () =>
  timestamp('updated_at', { withTimezone: true })
    .notNull()
    .defaultNow()
    .$onUpdate(() => new Date());
/** JSON metadata is called extra_data (the original design's name; `metadata` clashes with ORM internals). */
const extraData = () =>
  jsonb('extra_data')
    .$type<Record<string, unknown>>()
    .notNull()
    .default(sql`'{}'::jsonb`);
/** Every tenant-scoped row points at its tenant and disappears with it. */
const tenantId = () =>
  uuid('tenant_id')
    .notNull()
    .references(() => tenants.id, { onDelete: 'cascade' });

export const tenants = pgTable(
  'tenants',
  {
    id: id(),
    name: text('name').notNull(),
    status: text('status', { enum: ['active', 'suspended'] })
      .notNull()
      .default('active'),
    suspendedAt: timestamp('suspended_at', { withTimezone: true }),
    suspendedReason: text('suspended_reason'),
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [check('tenants_status_check', sql`${t.status} in ('active', 'suspended')`)],
);

export const users = pgTable(
  'users',
  {
    id: id(),
    tenantId: tenantId(),
    /** Stored lower-cased; unique across the platform because login is by email alone. */
    email: text('email').notNull(),
    passwordHash: text('password_hash').notNull(),
    fullName: text('full_name'),
    role: text('role', { enum: ['admin', 'member'] })
      .notNull()
      .default('member'),
    isActive: boolean('is_active').notNull().default(true),
    isPlatformAdmin: boolean('is_platform_admin').notNull().default(false),
    lastLoginAt: timestamp('last_login_at', { withTimezone: true }),
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('users_email_key').on(t.email),
    index('users_tenant_id_idx').on(t.tenantId),
    check('users_role_check', sql`${t.role} in ('admin', 'member')`),
    check('users_email_lower_check', sql`${t.email} = lower(${t.email})`),
  ],
);

/** Organisation-level agent settings (the original design's TenantConfig): one row per tenant. */
export const tenantConfigs = pgTable(
  'tenant_configs',
  {
    id: id(),
    tenantId: tenantId(),
    agentName: text('agent_name'),
    systemPrompt: text('system_prompt'),
    greeting: text('greeting'),
    language: text('language'),
    // The settings' JSON as written; read through tenantSettingsSchema, which fills the defaults of keys added since.
    rag: jsonb('rag')
      .$type<NonNullable<StoredTenantSettings['rag']>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    /** Call behaviour: transfer number, endpointing, interruptions, silence prompts, maximum duration. */
    call: jsonb('call')
      .$type<NonNullable<StoredTenantSettings['call']>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    providers: jsonb('providers')
      .$type<NonNullable<StoredTenantSettings['providers']>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    /** Provider name -> AES-256-GCM ciphertext (see services/secret-box.ts). Never returned in clear. */
    providerKeys: jsonb('provider_keys')
      .$type<NonNullable<StoredTenantSettings['provider_keys']>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    /** The tenant's HTTP tools (services/settings-schema.ts); their header values are sealed like provider keys. */
    tools: jsonb('tools')
      .$type<NonNullable<StoredTenantSettings['tools']>>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    /** Post-call analysis: enabled, outcomes, rubric, extraction schema (services/settings-schema.ts). */
    analysis: jsonb('analysis')
      .$type<NonNullable<StoredTenantSettings['analysis']>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    /** h22-calls: how long calls and recordings are kept (services/retention.ts). */
    retention: jsonb('retention')
      .$type<NonNullable<StoredTenantSettings['retention']>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('tenant_configs_tenant_id_key').on(t.tenantId)],
);

/**
 * The secret a tenant verifies our requests with (tool calls now, webhooks later), sealed like provider keys. After
 * a rotation the previous one keeps signing next to the new one until previous_expires_at, so the tenant's
 * servers can switch over without refusing a request.
 */
export const signingSecrets = pgTable(
  'signing_secrets',
  {
    id: id(),
    tenantId: tenantId(),
    secret: text('secret').notNull(),
    previousSecret: text('previous_secret'),
    previousExpiresAt: timestamp('previous_expires_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('signing_secrets_tenant_id_key').on(t.tenantId)],
);

/**
 * One user's preferences inside their tenant. The table keeps the original design's name (tenant_settings); the
 * tenant's own settings are in tenant_configs.
 */
export const userPreferences = pgTable(
  'tenant_settings',
  {
    id: id(),
    tenantId: tenantId(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    preferredVoice: text('preferred_voice'),
    preferredModel: text('preferred_model'),
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('tenant_settings_user_id_key').on(t.userId), index('tenant_settings_tenant_id_idx').on(t.tenantId)],
);

/** Refresh tokens are opaque and stored as SHA-256 hashes; a family is one login's chain of rotations. */
export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: id(),
    tenantId: tenantId(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    familyId: uuid('family_id').notNull(),
    tokenHash: text('token_hash').notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** Set when the token was exchanged (rotated) or revoked; presenting it again revokes the family. */
    usedAt: timestamp('used_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    uniqueIndex('refresh_tokens_token_hash_key').on(t.tokenHash),
    index('refresh_tokens_tenant_id_idx').on(t.tenantId),
    index('refresh_tokens_family_id_idx').on(t.familyId),
    index('refresh_tokens_user_id_idx').on(t.userId),
  ],
);

/** Tenant API keys for server-to-server use: shown once, stored as SHA-256 hashes. */
export const apiKeys = pgTable(
  'api_keys',
  {
    id: id(),
    tenantId: tenantId(),
    name: text('name').notNull(),
    /** The first characters of the key, kept in clear so people can tell their keys apart. */
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull(),
    createdByUserId: uuid('created_by_user_id').references((): AnyPgColumn => users.id, { onDelete: 'set null' }),
    lastUsedAt: timestamp('last_used_at', { withTimezone: true }),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('api_keys_key_hash_key').on(t.keyHash), index('api_keys_tenant_id_idx').on(t.tenantId)],
);

export const phoneNumbers = pgTable(
  'phone_numbers',
  {
    id: id(),
    tenantId: tenantId(),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'set null' }),
    /** E.164; unique across the platform because inbound calls find their tenant by it. */
    number: text('number').notNull(),
    friendlyName: text('friendly_name'),
    provider: text('provider').notNull().default('twilio'),
    providerSid: text('provider_sid'),
    isActive: boolean('is_active').notNull().default(true),
    /** How inbound calls to this number reach the agent; null: the tenant's `call.telephony_mode`. */
    mode: text('mode', { enum: ['media_stream', 'livekit'] }),
    /** Agent settings that differ on this number (agent_name, greeting, system_prompt, language). */
    overrides: jsonb('overrides')
      .$type<AgentOverrides>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('phone_numbers_number_key').on(t.number), index('phone_numbers_tenant_id_idx').on(t.tenantId)],
);

export const calls = pgTable(
  'calls',
  {
    id: id(),
    tenantId: tenantId(),
    phoneNumberId: uuid('phone_number_id').references(() => phoneNumbers.id, { onDelete: 'set null' }),
    userId: uuid('user_id').references(() => users.id, { onDelete: 'set null' }),
    /** inbound/outbound phone calls, web (browser audio) calls, and chat sessions (the same agent over text). */
    direction: text('direction', { enum: ['inbound', 'outbound', 'web', 'chat'] }).notNull(),
    status: text('status').notNull().default('queued'),
    fromNumber: text('from_number'),
    toNumber: text('to_number'),
    providerCallSid: text('provider_call_sid'),
    /**
     * The LiveKit room a phone call reached through the SIP dispatch rule (its name is LiveKit's, not ours): how
     * LiveKit's webhooks about that room find the call.
     */
    livekitRoom: text('livekit_room'),
    startedAt: timestamp('started_at', { withTimezone: true }),
    answeredAt: timestamp('answered_at', { withTimezone: true }),
    endedAt: timestamp('ended_at', { withTimezone: true }),
    durationMs: integer('duration_ms'),
    /** Agent settings for this call only (outbound calls' `overrides`, or the dialled number's). */
    overrides: jsonb('overrides')
      .$type<AgentOverrides>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    /** Storage key of the stereo WAV recording (caller left, agent right), once written. */
    recordingKey: text('recording_key'),
    recordingMs: integer('recording_ms'),
    /** Per-call latency summary; per-turn metrics live with the transcript turns. */
    metrics: jsonb('metrics')
      .$type<Record<string, unknown>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    /**
     * When the call was last seen alive: touched while an instance runs its audio (a heartbeat) and by every chat
     * message. A call not ended whose heartbeat stopped belongs to an instance that is gone; one never seen never
     * connected. The sweeper ends both (CallService.endStale).
     */
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }),
    /** h22-calls: why the call ended (the reason of its `call.ended`), written with its end. */
    endedReason: text('ended_reason'),
    /** h22-calls: the `{{name}}` values of the call's prompt and greeting (lib/call-input.ts). */
    variables: jsonb('variables')
      .$type<Record<string, string>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    /** The tenant's `metadata` of the call (outbound and web calls: a bounded JSON object, lib/call-input.ts). */
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('calls_tenant_id_idx').on(t.tenantId),
    // The sweeper's scan: only calls not ended.
    index('calls_not_ended_idx')
      .on(t.createdAt)
      .where(sql`${t.endedAt} is null`),
    index('calls_tenant_created_idx').on(t.tenantId, t.createdAt),
    // The analysis queue's scan for calls that ended lately (CallAnalysisService.enqueueEnded, every poll).
    index('calls_ended_at_idx').on(t.endedAt),
    uniqueIndex('calls_provider_call_sid_key').on(t.providerCallSid),
    uniqueIndex('calls_livekit_room_key').on(t.livekitRoom),
  ],
);

export const callEvents = pgTable(
  'call_events',
  {
    id: id(),
    tenantId: tenantId(),
    callId: uuid('call_id')
      .notNull()
      .references(() => calls.id, { onDelete: 'cascade' }),
    type: text('type').notNull(),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull().defaultNow(),
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('call_events_tenant_id_idx').on(t.tenantId), index('call_events_call_id_idx').on(t.callId, t.occurredAt)],
);

export const callTranscripts = pgTable(
  'call_transcripts',
  {
    id: id(),
    tenantId: tenantId(),
    callId: uuid('call_id')
      .notNull()
      .references(() => calls.id, { onDelete: 'cascade' }),
    seq: integer('seq').notNull(),
    speaker: text('speaker', { enum: ['caller', 'agent', 'system'] }).notNull(),
    text: text('text').notNull(),
    startMs: integer('start_ms'),
    endMs: integer('end_ms'),
    interrupted: boolean('interrupted').notNull().default(false),
    /** h22-knowledge: `text` ends with the words heard of a sentence a barge-in cut (estimated from the audio played). */
    truncated: boolean('truncated').notNull().default(false),
    /** The knowledge passages the agent's turn was grounded on (lib/citation.ts; older rows: chunk ids). */
    citations: jsonb('citations')
      .$type<StoredCitation[]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    /** Per-turn latencies in ms (endpointing, stt_final, retrieval, llm_ttft, tts_ttfb, voice_to_voice, ...). */
    metrics: jsonb('metrics')
      .$type<Record<string, number>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    index('call_transcripts_tenant_id_idx').on(t.tenantId),
    uniqueIndex('call_transcripts_call_seq_key').on(t.callId, t.seq),
    // h22-calls: the call list's transcript search (`q`, services/calls.ts) matches this expression exactly.
    index('call_transcripts_text_search_idx').using('gin', sql`to_tsvector('english', ${t.text})`),
  ],
);

/**
 * A document is also its own ingestion job: `status`, `attempts`, `next_attempt_at` and the lease
 * (`locked_by`, `locked_at`) make the table the queue, claimed with FOR UPDATE SKIP LOCKED.
 * `version` is the content being ingested; `live_version` the one whose chunks answer searches, so a
 * replacement keeps serving the old chunks until the new ones are complete.
 */
export const documents = pgTable(
  'documents',
  {
    id: id(),
    tenantId: tenantId(),
    title: text('title').notNull(),
    status: text('status', { enum: ['pending', 'processing', 'ready', 'failed'] })
      .notNull()
      .default('pending'),
    error: text('error'),
    chunkCount: integer('chunk_count').notNull().default(0),
    filename: text('filename'),
    format: text('format', { enum: ['text', 'markdown', 'html', 'pdf', 'docx'] })
      .notNull()
      .default('text'),
    sizeBytes: integer('size_bytes').notNull().default(0),
    contentSha256: text('content_sha256'),
    version: integer('version').notNull().default(1),
    liveVersion: integer('live_version'),
    attempts: integer('attempts').notNull().default(0),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    lockedBy: text('locked_by'),
    lockedAt: timestamp('locked_at', { withTimezone: true }),
    chunksTotal: integer('chunks_total'),
    chunksDone: integer('chunks_done').notNull().default(0),
    /** Model and dimension of the live chunks' vectors. */
    embeddingModel: text('embedding_model'),
    embeddingDimensions: integer('embedding_dimensions'),
    readyAt: timestamp('ready_at', { withTimezone: true }),
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('documents_tenant_id_idx').on(t.tenantId), index('documents_queue_idx').on(t.status, t.nextAttemptAt)],
);

/**
 * The uploaded file, kept for retries, restarts and re-embedding with another model, in parts of at most
 * DOCUMENT_PART_BYTES: the embedded database runs on the main thread, and one statement writing (or reading) a 19 MB
 * file held it for 0.8 to 1.6 s, every request and live call with it; a part takes tens of milliseconds.
 */
export const documentParts = pgTable(
  'document_parts',
  {
    documentId: uuid('document_id')
      .notNull()
      .references(() => documents.id, { onDelete: 'cascade' }),
    part: integer('part').notNull(),
    bytes: bytea('bytes').notNull(),
  },
  (t) => [primaryKey({ columns: [t.documentId, t.part] })],
);

export const documentChunks = pgTable(
  'document_chunks',
  {
    id: id(),
    tenantId: tenantId(),
    documentId: uuid('document_id')
      .notNull()
      .references(() => documents.id, { onDelete: 'cascade' }),
    /** The document version this chunk belongs to; only the document's live_version is searched. */
    version: integer('version').notNull().default(1),
    chunkIndex: integer('chunk_index').notNull(),
    content: text('content').notNull(),
    /** Headings above the chunk, outermost first, and the page it starts on: where an answer came from. */
    headingPath: jsonb('heading_path')
      .$type<string[]>()
      .notNull()
      .default(sql`'[]'::jsonb`),
    page: integer('page'),
    tokenCount: integer('token_count').notNull().default(0),
    embedding: anyVector('embedding'),
    embeddingModel: text('embedding_model'),
    embeddingDimensions: integer('embedding_dimensions'),
    /** Full-text side of hybrid search; English stemming. */
    tsv: tsvector('tsv').generatedAlwaysAs(sql`to_tsvector('english', content)`),
    /** BM25 side of search (h21-retrieval): saturated term frequencies and word pairs (rag/bm25.ts); null before 0017. */
    bm25: sparsevec('bm25'),
    /** The distinct word ids of `bm25`: what the chunk adds to its tenant's document frequencies when it goes live. */
    termIds: integer('term_ids').array(),
    extraData: extraData(),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    /**
     * `term_ids` keyed by tenant (knowledge_term_keys(), migration 0020: each word id XOR a hash of the tenant), so
     * its GIN index reads only this tenant's chunks holding the question's words: BM25's candidates. The (tenant_id,
     * tsv) index read the tenant's whole posting list for every search; a tsv-only index, every tenant's matches.
     * Generated, so ingestion, copies and old rows need nothing. Search still filters by tenant_id: two tenants'
     * keys can meet.
     */
    termKeys: integer('term_keys')
      .array()
      .generatedAlwaysAs(sql`knowledge_term_keys(tenant_id, term_ids)`),
  },
  (t) => [
    index('document_chunks_tenant_id_idx').on(t.tenantId),
    uniqueIndex('document_chunks_document_version_index_key').on(t.documentId, t.version, t.chunkIndex),
    // fastupdate off: the embedded database has no autovacuum, and a pending list that is never merged is read by every
    // search (4 ms and 287 pages for 70 matches at 10k chunks).
    index('document_chunks_term_keys_idx').using('gin', t.termKeys).with({ fastupdate: false }),
  ],
);

/**
 * The webhook outbox: every event for the tenant's systems (lib/webhook-events.ts), written in the same transaction
 * as the change that caused it, so a crash between the two can neither lose an event nor invent one. The delivery
 * worker sends them from here; `id` (`evt_...`) is the idempotency key the receiver sees.
 */
export const webhookEvents = pgTable(
  'webhook_events',
  {
    id: text('id').primaryKey(),
    tenantId: tenantId(),
    type: text('type').notNull(),
    /** The call the event is about: events of one call are delivered in order. */
    callId: uuid('call_id'),
    data: jsonb('data').$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('webhook_events_tenant_created_idx').on(t.tenantId, t.createdAt)],
);

// ---- Tenant limits (issue 18, "Limits, enforced live") ----

/**
 * What the platform admin set for a tenant; a missing row or a null column means the platform default from config
 * (concurrent calls: MAX_LIVE_CALLS_PER_TENANT). One row per tenant, so more caps are more columns.
 */
export const tenantLimits = pgTable('tenant_limits', {
  tenantId: uuid('tenant_id')
    .primaryKey()
    .references(() => tenants.id, { onDelete: 'cascade' }),
  /** Concurrent calls across every instance (admission.ts). */
  maxConcurrentCalls: integer('max_concurrent_calls'),
  createdAt: createdAt(),
  updatedAt: updatedAt(),
});

// ---- post-call analysis (analysis/) ----

/**
 * One post-call analysis per call: a job in a database queue (claimed with FOR UPDATE SKIP LOCKED under a lease, like
 * documents) and, once done, its result. Re-running an analysis re-queues the same row.
 */
export const callAnalyses = pgTable(
  'call_analyses',
  {
    callId: uuid('call_id')
      .primaryKey()
      .references(() => calls.id, { onDelete: 'cascade' }),
    tenantId: tenantId(),
    status: text('status', { enum: ['queued', 'running', 'done', 'failed'] })
      .notNull()
      .default('queued'),
    /** Claims so far (a worker that dies mid-job counts too); reset by a re-run. */
    attempts: integer('attempts').notNull().default(0),
    lockedBy: text('locked_by'),
    lockedAt: timestamp('locked_at', { withTimezone: true }),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    /** The analysis (analysis/analyzer.ts: AnalysisResult) once done. */
    result: jsonb('result').$type<Record<string, unknown>>(),
    /** Which engine produced it: openai, anthropic, openai_compatible or local. */
    engine: text('engine'),
    model: text('model'),
    /** Why it failed (a tenant may read it: no provider's own words). */
    error: text('error'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (t) => [
    index('call_analyses_tenant_id_idx').on(t.tenantId),
    // The claim's scan: only jobs not finished.
    index('call_analyses_pending_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} in ('queued', 'running')`),
  ],
);

// ---- Webhook endpoints and their deliveries (services/webhooks.ts, services/webhook-delivery.ts) ----

/**
 * A tenant's webhook endpoint: where its events go. The signing secret (`whsec_...`, Standard Webhooks) is sealed
 * like provider keys; after a rotation the previous one keeps signing next to the new one until
 * previous_secret_expires_at. `failing_since` is the first failed attempt of an unbroken run of failures: three days
 * of it disables the endpoint (`disabled_reason` says why).
 */
export const webhookEndpoints = pgTable(
  'webhook_endpoints',
  {
    id: id(),
    tenantId: tenantId(),
    url: text('url').notNull(),
    /** Event types subscribed to; `*` is every type but the opt-in ones (transcript.turn). */
    events: text('events').array().notNull(),
    description: text('description'),
    enabled: boolean('enabled').notNull().default(true),
    secret: text('secret').notNull(),
    previousSecret: text('previous_secret'),
    previousSecretExpiresAt: timestamp('previous_secret_expires_at', { withTimezone: true }),
    disabledReason: text('disabled_reason'),
    failingSince: timestamp('failing_since', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [index('webhook_endpoints_tenant_idx').on(t.tenantId, t.createdAt)],
);

/**
 * One event for one endpoint. `seq` is the order of publication: a later delivery of the same call and endpoint
 * waits while an earlier one is pending. A pending row is claimed under a lease (locked_by/locked_at), so any
 * number of instances share the work and a crashed instance's claims come back after the lease.
 */
export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: id(),
    seq: bigserial('seq', { mode: 'number' }).notNull(),
    tenantId: tenantId(),
    endpointId: uuid('endpoint_id')
      .notNull()
      .references(() => webhookEndpoints.id, { onDelete: 'cascade' }),
    eventId: text('event_id')
      .notNull()
      .references(() => webhookEvents.id, { onDelete: 'cascade' }),
    eventType: text('event_type').notNull(),
    callId: uuid('call_id'),
    /** When the event was published: replays by time range and the 24 h retry window count from it. */
    eventCreatedAt: timestamp('event_created_at', { withTimezone: true }).notNull(),
    status: text('status', { enum: ['pending', 'delivered', 'failed'] })
      .notNull()
      .default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** Retries stop after this (24 h after the event, or after a replay). */
    retryUntil: timestamp('retry_until', { withTimezone: true })
      .notNull()
      .default(sql`now() + interval '24 hours'`),
    nextAttemptAt: timestamp('next_attempt_at', { withTimezone: true }).notNull().defaultNow(),
    lockedBy: text('locked_by'),
    lockedAt: timestamp('locked_at', { withTimezone: true }),
    lastStatusCode: integer('last_status_code'),
    lastError: text('last_error'),
    deliveredAt: timestamp('delivered_at', { withTimezone: true }),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check('webhook_deliveries_status_check', sql`${t.status} in ('pending', 'delivered', 'failed')`),
    uniqueIndex('webhook_deliveries_endpoint_event_key').on(t.endpointId, t.eventId),
    index('webhook_deliveries_due_idx')
      .on(t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
    // The in-order rule: is an earlier delivery of this call to this endpoint still pending?
    index('webhook_deliveries_call_order_idx')
      .on(t.endpointId, t.callId, t.seq)
      .where(sql`${t.status} = 'pending'`),
    index('webhook_deliveries_endpoint_event_time_idx').on(t.endpointId, t.eventCreatedAt),
    // Retention: finished rows by when they finished.
    index('webhook_deliveries_done_idx')
      .on(t.updatedAt)
      .where(sql`${t.status} <> 'pending'`),
  ],
);

/** Every attempt of a delivery, for the delivery log: the answer's status, latency, first 1 KB, or the error. */
export const webhookAttempts = pgTable(
  'webhook_attempts',
  {
    id: id(),
    deliveryId: uuid('delivery_id')
      .notNull()
      .references(() => webhookDeliveries.id, { onDelete: 'cascade' }),
    attemptedAt: timestamp('attempted_at', { withTimezone: true }).notNull(),
    statusCode: integer('status_code'),
    latencyMs: integer('latency_ms').notNull(),
    responseBody: text('response_body'),
    error: text('error'),
  },
  (t) => [index('webhook_attempts_delivery_idx').on(t.deliveryId, t.attemptedAt)],
);

// ---- Usage and cost (services/usage.ts) ----

/**
 * The usage ledger: what each call (or chat session, or document ingestion) consumed, one row per component,
 * provider, model and unit, written as the call goes and when it ends (a chat session: per turn; ingestion: per
 * batch). The
 * price is the one in force when the row was written, so a later price change never rewrites past costs.
 * `billed_to` is `tenant` when the tenant's own provider key (or own server) was used: the vendor bills the tenant.
 */
export const usageRecords = pgTable(
  'usage_records',
  {
    id: id(),
    tenantId: tenantId(),
    /** The call or chat session; null for ingestion. Kept when the call row is deleted: the usage happened. */
    callId: uuid('call_id'),
    documentId: uuid('document_id'),
    /** telephony, stt, llm, tts, embeddings. */
    component: text('component').notNull(),
    provider: text('provider').notNull(),
    model: text('model').notNull().default(''),
    /** seconds (telephony, stt), input_tokens, output_tokens, characters (tts), tokens (embeddings). */
    unit: text('unit').notNull(),
    quantity: doublePrecision('quantity').notNull(),
    /** USD per one unit, from the price table (tenant override, else the platform's list price). */
    unitPriceUsd: doublePrecision('unit_price_usd').notNull(),
    costUsd: doublePrecision('cost_usd').notNull(),
    billedTo: text('billed_to', { enum: ['platform', 'tenant'] }).notNull(),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('usage_records_tenant_occurred_idx').on(t.tenantId, t.occurredAt),
    index('usage_records_call_idx').on(t.callId),
    check('usage_records_billed_to_check', sql`${t.billedTo} in ('platform', 'tenant')`),
  ],
);

/**
 * What the platform admin set for a tenant: monthly caps (null: the platform's default from config; 0: none) and
 * prices that replace the list prices for it (price key -> USD per unit, services/prices.ts).
 */
export const tenantBilling = pgTable('tenant_billing', {
  tenantId: uuid('tenant_id')
    .primaryKey()
    .references(() => tenants.id, { onDelete: 'cascade' }),
  monthlyMinutesCap: integer('monthly_minutes_cap'),
  monthlySpendCapUsd: doublePrecision('monthly_spend_cap_usd'),
  prices: jsonb('prices')
    .$type<Record<string, number>>()
    .notNull()
    .default(sql`'{}'::jsonb`),
  updatedAt: updatedAt(),
});

/** A cap reached, once per tenant, month and limit: `usage.limit_reached` is published when the row is inserted. */
export const usageLimitNotices = pgTable(
  'usage_limit_notices',
  {
    tenantId: tenantId(),
    /** 'YYYY-MM' (UTC). */
    month: text('month').notNull(),
    limit: text('limit').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.month, t.limit] })],
);

// ---- h22-calls: scheduled jobs (services/retention.ts) ----

/**
 * A job that runs every so often across all instances, once: an instance takes it when it is due and not held
 * (`locked_until` passed), under a lease it renews while working; a crashed holder's lease lapses. `next_run_at` is
 * stored, so a restart neither skips nor repeats a run.
 */
export const scheduledJobs = pgTable('scheduled_jobs', {
  name: text('name').primaryKey(),
  nextRunAt: timestamp('next_run_at', { withTimezone: true }).notNull().defaultNow(),
  lockedBy: text('locked_by'),
  lockedUntil: timestamp('locked_until', { withTimezone: true }),
  lastRunAt: timestamp('last_run_at', { withTimezone: true }),
  /** What the last run did or why it failed (for operators). */
  lastResult: jsonb('last_result').$type<Record<string, unknown>>(),
  updatedAt: updatedAt(),
});

// --- h21-retrieval: per-tenant term statistics for BM25 (rag/bm25.ts) ---

/**
 * Document frequency of each word id among a tenant's live chunks: the IDF of a query word is read from here. Kept
 * by ingestion when a version goes live (its chunks added, the previous version's taken away) and by a document's
 * deletion, in the same transaction; a tenant's rows are its own, so no other tenant's documents change its IDF.
 */
export const knowledgeTermStats = pgTable(
  'knowledge_term_stats',
  {
    tenantId: tenantId(),
    term: integer('term').notNull(),
    df: integer('df').notNull(),
  },
  (t) => [primaryKey({ columns: [t.tenantId, t.term] })],
);

/** A tenant's count of live chunks (the N of IDF); its row is also the lock that orders updates of the statistics. */
export const knowledgeCorpusStats = pgTable('knowledge_corpus_stats', {
  tenantId: uuid('tenant_id')
    .primaryKey()
    .references(() => tenants.id, { onDelete: 'cascade' }),
  chunks: integer('chunks').notNull().default(0),
});
