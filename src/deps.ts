// Composition root: builds the database, cache and services once and hands them around as one Deps object.
import type { FastifyBaseLogger } from 'fastify';
import type { Cache } from './cache/cache.js';
import { MemoryCache } from './cache/memory-cache.js';
import { RedisCache } from './cache/redis-cache.js';
import { type Config, ConfigError } from './config.js';
import { type Database, openDatabase } from './db/client.js';
import { allObservers, CallLogLines } from './lib/call-log-lines.js';
import { OperatorMetrics } from './lib/operator-metrics.js';
import { OutboundGuard } from './lib/outbound.js';
import { DocumentPool } from './rag/document-pool.js';
import { LOCAL_EMBEDDING_MODEL, LocalEmbedder } from './rag/embedders/local-embedder.js';
import { EmbedderRegistry } from './rag/embedders/registry.js';
import { IngestionWorker } from './rag/ingestion.js';
import { Retriever } from './rag/retriever.js';
import { analyzeKnowledgeIfStale, reindexTermVectors } from './rag/term-stats.js';
import { AnalyzerRegistry } from './analysis/analyzers.js';
import { ANALYSIS_WORKER_OPTIONS, AnalysisWorker } from './analysis/worker.js';
import { BackgroundThread } from './background.js';
import { AccountService } from './services/accounts.js';
import { CallAnalysisService } from './services/call-analyses.js';
import { CallDeletion } from './services/call-deletion.js';
import { RetentionJob } from './services/retention.js';
import { ApiKeyService } from './services/api-keys.js';
import { CallService } from './services/calls.js';
import { DocumentService } from './services/documents.js';
import { PhoneNumberService } from './services/phone-numbers.js';
import { TwilioRest } from './telephony/twilio-rest.js';
import { SecretBox } from './services/secret-box.js';
import { checkKeyRing } from './services/secret-rotation.js';
import { SettingsService } from './services/settings.js';
import { SigningSecretService } from './services/signing-secrets.js';
import { TenantAdminService } from './services/tenants.js';
import { UsageService } from './services/usage.js';
import { engineOf } from './providers/engines.js';
import { keyOwner } from './providers/vendors.js';
import { recordingEmbedder } from './voice/usage-meter.js';
import { LiveKitService } from './telephony/livekit.js';
import { LiveKitAgent } from './telephony/livekit-agent.js';
import { LiveKitWebhook } from './telephony/livekit-webhook.js';
import { TokenService } from './services/tokens.js';
import { createRecordingStore } from './storage/create-recording-store.js';
import type { RecordingStore } from './storage/recording-store.js';
import { ProviderRegistry } from './voice/registry.js';
import { TextChannel } from './voice/text-channel.js';
import { lostAfterMs, VoiceCalls } from './voice/voice-calls.js';
import { Admission } from './voice/admission.js';
import { CallSweeper } from './voice/call-sweeper.js';
import { CallControl } from './voice/call-control.js';
import { CallTokenService } from './services/call-tokens.js';
import { Telephony } from './telephony/telephony.js';
import { MediaProcess } from './telephony/media-process.js';
import { WebhookDeliveryWorker } from './services/webhook-delivery.js';
import { WEBHOOK_CHANNEL } from './services/outbox.js';
import { WebhookService } from './services/webhooks.js';

export interface Deps {
  config: Config;
  log: FastifyBaseLogger;
  database: Database;
  cache: Cache;
  tokens: TokenService;
  accounts: AccountService;
  apiKeys: ApiKeyService;
  settings: SettingsService;
  signingSecrets: SigningSecretService;
  tenantAdmin: TenantAdminService;
  embedders: EmbedderRegistry;
  documents: DocumentService;
  /** Worker threads for all document work (extraction, chunking, local embedding). */
  documentPool: DocumentPool;
  ingestion: IngestionWorker;
  retriever: Retriever;
  calls: CallService;
  /** Post-call analyses: their records, and the worker that runs them off the calls' path. */
  analyses: CallAnalysisService;
  analysisWorker: AnalysisWorker;
  phoneNumbers: PhoneNumberService;
  providers: ProviderRegistry;
  textChannel: TextChannel;
  voice: VoiceCalls;
  /** The one admission point of new calls: this instance's capacity, and each tenant's concurrent calls everywhere. */
  admission: Admission;
  /** GET /metrics: counters moved by the call records and admission, gauges read from their sources at scrape time. */
  metrics: OperatorMetrics;
  /** Ends calls whose media never connected, calls of a stopped instance, idle chat sessions. */
  sweeper: CallSweeper;
  control: CallControl;
  telephony: Telephony;
  recordings: RecordingStore;
  /** Deletes calls with what they left (transcript, events, webhook events, recording): the API and retention. */
  callDeletion: CallDeletion;
  /** The tenants' retention: deletes old calls and recordings, hourly, once across instances. */
  retention: RetentionJob;
  /** Undefined when LIVEKIT_URL, _API_KEY and _API_SECRET are not all set: the LiveKit routes answer 503. */
  livekit: LiveKitService | undefined;
  /** The agent's side of LiveKit calls (joins rooms, runs their conversations). */
  livekitAgent: LiveKitAgent;
  /** What LiveKit's webhooks mean for our calls. */
  livekitWebhook: LiveKitWebhook;
  /** The tenant's webhook endpoints, their delivery log and replays. */
  webhooks: WebhookService;
  /** Sends the outbox's deliveries (every instance runs one; they share the rows). */
  webhookDelivery: WebhookDeliveryWorker;
  /** The usage ledger, prices and monthly caps. */
  usage: UsageService;
  /**
   * Where webhook delivery and post-call analysis run when the database is reachable from another thread
   * (BACKGROUND_THREAD): `webhookDelivery` and `analysisWorker` are then not started in this thread.
   */
  background?: BackgroundThread;
}

/** `databaseSnapshot`: tests only, a migrated embedded database to start from (db/client.ts). */
export async function buildDeps(
  config: Config,
  log: FastifyBaseLogger,
  opts: { cachePrefix?: string; databaseSnapshot?: Blob } = {},
): Promise<Deps> {
  const database = await openDatabase({
    url: config.databaseUrl,
    dataDir: config.dataDir === 'memory://' ? 'memory://' : `${config.dataDir}/pglite`,
    poolMax: config.databasePoolMax,
    snapshot: opts.databaseSnapshot,
    thread: config.embeddedDbThread,
    migrate: config.migrateOnStart,
  });
  let cache: Cache;
  if (config.redisUrl) {
    const redis = new RedisCache(config.redisUrl, opts.cachePrefix ?? config.redisKeyPrefix);
    // Start even when Redis is down (readiness reports it); ioredis keeps reconnecting in the background.
    await redis.connect().catch((err) => log.warn({ err }, 'redis not reachable at start-up'));
    cache = redis;
  } else {
    cache = new MemoryCache();
  }
  const db = database.db;
  const tokens = new TokenService(db, config.secretKeys, config.accessTokenTtlMs, config.refreshTokenTtlMs);
  const accounts = new AccountService(db, tokens);
  const apiKeys = new ApiKeyService(db);
  const box = new SecretBox(config.secretKeys);
  // A SECRET_KEY changed without its predecessor in SECRET_KEY_PREVIOUS: refuse to start rather than run with every
  // stored provider key and signing secret unreadable.
  const ringProblem = await checkKeyRing(db, box);
  if (ringProblem) {
    await database.close();
    throw new ConfigError(`Invalid configuration:\n  SECRET_KEY: ${ringProblem}`);
  }
  const settings = new SettingsService(db, box);
  const signingSecrets = new SigningSecretService(db, box);
  const embedders = new EmbedderRegistry(settings, config.credentials);
  // One worker thread per ingestion slot: each slot has at most one job in the pool at a time.
  const documentPool = new DocumentPool({
    size: Math.max(1, config.ingest.concurrency),
    maxOldGenerationSizeMb: config.documentWork.workerMemoryMb,
    jobTimeoutMs: config.documentWork.jobTimeoutMs,
    limits: config.documentWork.limits,
    maxChunks: config.documentWork.maxChunks,
  });
  const usage = new UsageService(db, config.usage);
  // Ingestion embeds with the local model in the pool (CPU work); search keeps embedding its one query in place.
  // Its tokens go to the usage ledger per batch (the local model's too, at price 0).
  const ingestEmbedders = {
    forTenant: async (tenantId: string) => {
      const e = await embedders.forTenant(tenantId);
      const { settings: chosen, keys } = await settings.forProviders(tenantId);
      const engine = engineOf('embeddings', chosen.providers.embeddings.provider);
      return recordingEmbedder(
        e instanceof LocalEmbedder ? documentPool.embedder(e) : e,
        engine?.vendor ? engine.name : 'local',
        engine?.vendor ? keyOwner(engine.vendor, keys) : 'platform',
        (lines) =>
          usage.record(tenantId, lines).catch((err: unknown) => log.error({ err, tenantId }, 'ingestion usage could not be recorded')),
      );
    },
  };
  // The embedded database writes on the main thread: smaller write transactions, so no statement holds it long.
  const ingestion = new IngestionWorker(db, ingestEmbedders, documentPool, log.child({ component: 'ingestion' }), {
    ...config.ingest,
    writeBatchRows: database.kind === 'embedded' ? 8 : 16,
  });
  const retriever = new Retriever(db, embedders);
  const metrics = new OperatorMetrics({ tenantLabels: config.metrics.tenantLabels });
  const calls = new CallService(db, allObservers(metrics, new CallLogLines(log.child({ component: 'calls' }))));
  const recordings = createRecordingStore(config, config.secretKeys);
  // One guard for every request to a URL a tenant chose: tool URLs, OpenAI-compatible base URLs, webhooks.
  const outbound = new OutboundGuard(config.outbound);
  // Queued deliveries (a ping, a replay) wake the worker instead of waiting for its next poll.
  // Off the event loop when another thread can reach the database (background.ts): their HTTP, signatures and
  // queries then do not hold up live calls' audio.
  const background =
    config.backgroundThread && database.connection
      ? new BackgroundThread(
          { config, connection: database.connection, kind: database.kind, reclaimAbandoned: database.kind === 'embedded' },
          log.child({ component: 'background' }),
          (outcome, seconds) => metrics.webhookDelivery(outcome, seconds),
        )
      : undefined;
  // Not waited for: its start-up (loading its modules, on a loaded machine seconds) is not the service's; what is
  // queued meanwhile waits in the database. A thread that fails is logged and started again.
  void background?.start().catch((err: unknown) => log.error({ err }, 'the background thread did not start; trying again'));
  const webhooks = new WebhookService(db, box, outbound, {
    maxEndpointsPerTenant: config.webhooks.maxEndpointsPerTenant,
    onQueued: () => (background ? background.wake('webhooks') : webhookDelivery.wake()),
  });
  const webhookDelivery = new WebhookDeliveryWorker(db, webhooks, outbound.fetch, log.child({ component: 'webhooks' }), {
    ...config.webhooks,
    onAttempt: (outcome, seconds) => metrics.webhookDelivery(outcome, seconds),
    // Woken by publishEvent's NOTIFY at commit, from this instance or another.
    listen: (onNotify) => database.listen(WEBHOOK_CHANNEL, onNotify),
  });
  const providers = new ProviderRegistry(
    settings,
    retriever,
    embedders,
    { credentials: config.credentials, localTtsConcurrency: config.localTtsConcurrency },
    log.child({ component: 'providers' }),
    { outbound, signingSecrets: (tenantId) => signingSecrets.forSigning(tenantId), log: log.child({ component: 'tools' }) },
  );
  // Analyses: one at a time per instance (a cloud model's answer takes seconds; nothing waits for it).
  // The service wakes the worker when it queues a re-run; the worker is built with the service.
  const wakeAnalysis = { wake: () => {} };
  const analyses = new CallAnalysisService(db, () => (background ? background.wake('analysis') : wakeAnalysis.wake()));
  const analysisWorker = new AnalysisWorker(
    db,
    calls,
    analyses,
    new AnalyzerRegistry(settings, config.credentials, outbound.fetch),
    log.child({ component: 'analysis' }),
    ANALYSIS_WORKER_OPTIONS,
  );
  wakeAnalysis.wake = () => analysisWorker.wake();
  const { accountSid, authToken, apiBaseUrl } = config.twilio;
  // Who may register a number: the Twilio account's incoming numbers are checked unless the operator skips it.
  const numberOwnership = config.phoneNumbersSkipVerification
    ? 'skip'
    : accountSid && authToken
      ? new TwilioRest({ accountSid, authToken, apiBaseUrl })
      : undefined;
  const phoneNumbers = new PhoneNumberService(db, numberOwnership);
  // Commands for live calls (hang up, transfer) reach whichever instance holds the call's media.
  const control = new CallControl(cache, log.child({ component: 'call-control' }));
  await control.start();
  const tenantAdmin = new TenantAdminService(db);
  const admissionLog = log.child({ component: 'admission' });
  const admission = new Admission(
    {
      maxLiveCalls: config.calls.maxLive,
      maxLiveCallsPerTenant: config.calls.maxLivePerTenant,
      connectTimeoutMs: config.calls.connectTimeoutMs,
      leaseMs: config.calls.leaseMs,
    },
    {
      // Redis with REDIS_URL (every instance counts the same leases), in-process otherwise (one instance).
      leases: cache,
      tenantCap: async (tenantId) => (await tenantAdmin.limits(tenantId)).maxConcurrentCalls,
      onStoreError: (err) => admissionLog.warn({ err }, 'shared call count unreachable: admitting on this instance’s count'),
      onRefusal: (code, kind) => metrics.refused(code, kind),
    },
  );
  admission.start();
  const voice = new VoiceCalls(
    calls,
    providers,
    log.child({ component: 'voice' }),
    recordings,
    config.recordings.spoolDir,
    control,
    admission,
    usage,
    { heartbeatMs: config.calls.heartbeatMs },
  );
  await voice.sweepSpool();
  const livekitAgent = new LiveKitAgent({
    calls,
    voice,
    settings,
    phoneNumbers,
    log: log.child({ component: 'livekit-agent' }),
    admission,
    usage,
  });
  const callDeletion = new CallDeletion(db, recordings, log.child({ component: 'call-deletion' }));
  const retention = new RetentionJob(db, callDeletion, log.child({ component: 'retention' }));
  retention.start();
  const sweeper = new CallSweeper(
    calls,
    {
      connectTimeoutMs: config.calls.connectTimeoutMs,
      chatIdleMs: config.calls.chatIdleTimeoutMs,
      lostAfterMs: lostAfterMs(config.calls.heartbeatMs),
      everyMs: 2 * config.calls.heartbeatMs,
    },
    log.child({ component: 'call-sweeper' }),
  );
  sweeper.start();
  const deps: Deps = {
    config,
    log,
    database,
    cache,
    tokens,
    accounts,
    apiKeys,
    settings,
    signingSecrets,
    tenantAdmin,
    embedders,
    documents: new DocumentService(db, config.documentMaxBytes, config.documentWork.limits, () => ingestion.wake()),
    documentPool,
    ingestion,
    retriever,
    calls,
    analyses,
    analysisWorker,
    phoneNumbers,
    providers,
    textChannel: new TextChannel(calls, providers, usage),
    voice,
    admission,
    metrics,
    sweeper,
    control,
    // A media token lasts as long as its call's place is kept for it: a call may connect until either runs out.
    telephony: new Telephony(
      config,
      calls,
      phoneNumbers,
      settings,
      voice,
      control,
      new CallTokenService(config.secretKeys, cache, config.calls.connectTimeoutMs),
      log.child({ component: 'telephony' }),
      admission,
      usage,
      {
        frameGap: (ms) => metrics.frameGap(ms),
        ...(config.mediaProcess && {
          process: new MediaProcess({ log: log.child({ component: 'media' }), onFrameGap: (ms) => metrics.frameGap(ms) }),
        }),
      },
    ),
    recordings,
    callDeletion,
    retention,
    livekit: LiveKitService.fromConfig(config, log),
    livekitAgent,
    livekitWebhook: new LiveKitWebhook({ calls, admission, agent: livekitAgent, recordingsInBucket: config.recordings.s3 !== undefined }),
    webhooks,
    webhookDelivery,
    usage,
    background,
  };
  metrics.setSource('activeCalls', () => voice.active);
  metrics.setSource('admittedCalls', () => admission.liveCalls);
  metrics.setSource('ingestionQueue', () => deps.documents.queueDepth());
  metrics.setSource('dbPool', () => database.poolStats?.());
  metrics.setSource('analysisQueue', () => analyses.queueDepth());
  metrics.setSource('webhookBacklog', () => webhooks.backlog());
  if (config.platformAdmin) await accounts.ensurePlatformAdmin(config.platformAdmin, log);
  const requeued = await deps.documents.requeueRetiredLocalModels(LOCAL_EMBEDDING_MODEL);
  if (requeued) log.info({ documents: requeued }, 'local embedder changed; documents re-queued for embedding');
  const withoutTerms = await deps.documents.requeueWithoutTermVectors();
  if (withoutTerms) log.info({ documents: withoutTerms }, 'documents stored before BM25 re-queued for indexing');
  const reindexed = await reindexTermVectors(db);
  if (reindexed) log.info({ documents: reindexed }, 'BM25 analyzer changed; documents re-indexed');
  // Knowledge stored before ingestion kept the planner's statistics (or by a process that stopped first).
  if (await analyzeKnowledgeIfStale(db)) log.info('knowledge tables analyzed');
  // PGlite is this process's alone, so whatever it left `processing` belonged to a process that is gone.
  await ingestion.start({ reclaimAbandoned: database.kind === 'embedded' });
  if (!background) {
    await analysisWorker.start({ reclaimAbandoned: database.kind === 'embedded' });
    await webhookDelivery.start({ reclaimAbandoned: database.kind === 'embedded' });
  }
  return deps;
}

export async function closeDeps(deps: Deps): Promise<void> {
  // First: the LiveKit agent stops joining rooms and waiting for callers (main.ts has drained live conversations),
  // and its calls that are ending close their rooms while the database is still there.
  await deps.livekitAgent.stop();
  await deps.telephony.stop();
  deps.voice.close();
  deps.admission.stop();
  deps.metrics.close();
  await deps.sweeper.stop();
  await deps.retention.stop();
  await deps.ingestion.stop();
  await deps.background?.stop();
  await deps.analysisWorker.stop();
  await deps.webhookDelivery.stop();
  await deps.documentPool.close();
  await deps.cache.close();
  await deps.database.close();
}
