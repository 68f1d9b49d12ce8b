// The operator's metrics (GET /metrics): what the platform counts and times, and where each number comes from.
// Counters are moved by the call records (CallService tells us each call event and each stored turn's latencies:
// never the audio path) and by admission; gauges are read at scrape time from callbacks the composition root points
// at their source, the ones that count database rows cached for a few seconds so scrapes cannot hammer the database.
// Labels take bounded values only (direction, status, end reason, stage, provider, failure reason), each checked
// against its closed set (anything else is `other`); a tenant_id label only behind a flag.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from './prometheus.js';
import { callStatus } from './call-events.js';
import { PROVIDER_FAILURES } from './provider-error.js';

/** The turn latencies (ms, as stored on each turn: see voice/turns.ts, agent.ts, call-session.ts) timed as stages. */
export const TURN_STAGES = ['endpointing', 'stt_final', 'retrieval', 'llm_ttft', 'tts_ttfb', 'voice_to_voice'] as const;
const STAGE_BUCKETS_S = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10];
/**
 * Frames are 20 ms apart (0 within the lead sent at an utterance's start); 0.04 is the line bench:calls draws: a
 * gap over it is a late frame.
 */
const FRAME_GAP_BUCKETS_S = [0.005, 0.02, 0.025, 0.03, 0.04, 0.06, 0.1, 0.2, 0.5, 1];

/** Why a call ended, as the `reason` label of calls_ended_total: a closed set, whatever the stored reason's words. */
export const ENDED_REASONS = [
  'caller_hangup',
  'agent',
  'transferred',
  'api_hangup',
  'max_duration',
  'silence',
  'refused',
  'provider_error',
  'telephony',
  'not_answered',
  'room_closed',
  'no_media',
  'instance_lost',
  'idle',
  'shutdown',
  'media_policy',
  'error',
  'other',
] as const;
export type EndedReason = (typeof ENDED_REASONS)[number];

const EXACT_REASONS: Record<string, EndedReason> = {
  'caller hung up': 'caller_hangup',
  // Twilio's `completed` before the session ended the call: the caller hung up (the agent's end comes first).
  'twilio: completed': 'caller_hangup',
  transferred: 'transferred',
  'hung up through the API': 'api_hangup',
  'maximum duration reached': 'max_duration',
  'caller silent': 'silence',
  'tenant suspended': 'refused',
  'user deactivated': 'refused',
  'speech-to-text failed': 'provider_error',
  'livekit room could not be created': 'provider_error',
  'livekit could not dial the number': 'provider_error',
  'the agent could not join the livekit room': 'provider_error',
  'twilio request failed': 'provider_error',
  'the phone was not answered': 'not_answered',
  'the caller left before the call began': 'not_answered',
  'the caller did not join the room': 'not_answered',
  'livekit room closed': 'room_closed',
  'livekit room finished': 'room_closed',
  'livekit room deleted': 'room_closed',
  no_media: 'no_media',
  instance_lost: 'instance_lost',
  idle: 'idle',
  'service shutting down': 'shutdown',
  'internal error': 'error',
};

/**
 * The label of a stored end reason. Reasons are written by our code (CallSession, telephony, the sweeper); the
 * agent's own `end_call` (a call's or a chat's) stores `agent ended the call: <the model's words>`. Anything not known
 * here is `other`.
 */
export function endedReasonOf(reason: string): EndedReason {
  const exact = EXACT_REASONS[reason];
  if (exact) return exact;
  if (/^(concurrency_limit|calls_at_capacity|too_many_calls|budget_exceeded):/.test(reason)) return 'refused';
  if (reason.startsWith('media policy:')) return 'media_policy';
  if (reason.startsWith('twilio: ')) return 'telephony';
  if (reason.startsWith('twilio failed')) return 'provider_error';
  if (reason.startsWith('agent ended the call')) return 'agent';
  return 'other';
}

const CALL_STATUSES = callStatus.options;
/** Engine names (providers/engines.ts) look like this; anything else is `other`. */
const PROVIDER_NAME = /^[a-z0-9][a-z0-9_.-]{0,39}$/;
/** `value` when it is one of `allowed`, else `other`: a label never takes a value from outside its set. */
const oneOf = (allowed: readonly string[], value: unknown): string =>
  typeof value === 'string' && allowed.includes(value) ? value : 'other';

/** Where the scrape-time gauges read their value. Any left unset is left out of the exposition. */
export interface MetricSources {
  /** Calls whose audio this instance is running now. */
  activeCalls?: () => number;
  /** Places taken on this instance (running, or admitted and waiting for their media). */
  admittedCalls?: () => number;
  /** Documents waiting for ingestion or being ingested, by status (a database count). */
  ingestionQueue?: () => Promise<{ status: string; count: number }[]>;
  /** Webhook deliveries not yet delivered (a database count). */
  webhookBacklog?: () => Promise<number>;
  /** Post-call analyses waiting or running (a database count). */
  analysisQueue?: () => Promise<number>;
  /** The `pg` pool's connections (absent for the embedded database). */
  dbPool?: () => { total: number; idle: number; waiting: number } | undefined;
}

export interface OperatorMetricsOptions {
  /** Adds tenant_id to the call counters: one series per tenant, so only for deployments with a few tenants. */
  tenantLabels?: boolean;
  /** How long a database-backed gauge's value is reused (ms). */
  cacheMs?: number;
  /** How long a scrape waits for a database-backed gauge before leaving it out (ms). */
  timeoutMs?: number;
  now?: () => number;
}

/** What the call records tell the metrics (CallService's observer). */
/** What an observer may read of a call (services/calls.ts's row has these fields). */
export interface ObservedCall {
  id: string;
  direction: string;
  durationMs: number | null;
}

export interface CallObserver {
  /** `call`: the call as stored with its start or end, for `call.started` and `call.ended`. */
  callEvent(tenantId: string, type: string, data: unknown, call?: ObservedCall): void;
  turn(metrics: Record<string, number> | undefined): void;
}

export class OperatorMetrics implements CallObserver {
  readonly registry = new Registry();
  readonly sources: MetricSources = {};
  private readonly tenantLabels: boolean;
  private readonly loop = monitorEventLoopDelay({ resolution: 10 });
  private readonly callsStarted: Counter;
  private readonly callsEnded: Counter;
  private readonly callsRefused: Counter;
  private readonly stages: Histogram;
  private readonly providerErrors: Counter;
  private readonly fallbacks: Counter;
  private readonly webhookDeliveries: Histogram;
  private readonly frameGaps: Histogram;

  constructor(private readonly opts: OperatorMetricsOptions = {}) {
    this.tenantLabels = opts.tenantLabels ?? false;
    const tenant = this.tenantLabels ? ['tenant_id'] : [];
    const r = this.registry;
    r.register(new Gauge('voice_calls_active', 'Calls whose audio this instance is running', [], () => this.sources.activeCalls?.() ?? 0));
    r.register(
      new Gauge(
        'voice_calls_admitted',
        'Places taken on this instance: running calls and calls admitted awaiting media',
        [],
        () => this.sources.admittedCalls?.() ?? 0,
      ),
    );
    this.callsStarted = r.register(
      new Counter('calls_started_total', 'Calls and chat sessions started, by direction', ['direction', ...tenant]),
    );
    this.callsEnded = r.register(
      new Counter('calls_ended_total', `Calls and chat sessions ended, by final status and why (${ENDED_REASONS.join(', ')})`, [
        'status',
        'reason',
        ...tenant,
      ]),
    );
    this.callsRefused = r.register(
      new Counter('calls_refused_total', 'New calls refused: concurrency_limit (the tenant) or calls_at_capacity (this instance)', [
        'code',
        'kind',
      ]),
    );
    this.stages = r.register(
      new Histogram('voice_turn_stage_seconds', `Per-turn latency of each stage (${TURN_STAGES.join(', ')})`, ['stage'], STAGE_BUCKETS_S),
    );
    this.frameGaps = r.register(
      new Histogram(
        'voice_media_frame_gap_seconds',
        'Time between two media messages of one utterance as this instance sends them to Twilio (20 ms when on time)',
        [],
        FRAME_GAP_BUCKETS_S,
      ),
    );
    this.providerErrors = r.register(
      new Counter('provider_errors_total', 'Provider failures during calls, by stage, provider and short reason', [
        'stage',
        'provider',
        'reason',
      ]),
    );
    this.fallbacks = r.register(
      new Counter('provider_fallbacks_total', 'A failed provider handed over to the next one mid-call (provider.fallback events)', [
        'stage',
        'provider',
      ]),
    );
    r.register(
      new Gauge('ingestion_queue_depth', 'Documents waiting for ingestion or being ingested, by status', ['status'], () =>
        this.bounded('ingestionQueue', this.sources.ingestionQueue).then((rows) =>
          (rows ?? []).map((row) => ({ labels: { status: row.status }, value: row.count })),
        ),
      ),
    );
    this.webhookDeliveries = r.register(
      new Histogram(
        'webhook_delivery_seconds',
        'Webhook delivery attempts: time from the event to the receiver’s answer, by outcome (delivered, failed)',
        ['outcome'],
        [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600],
      ),
    );
    r.register(
      new Gauge('webhook_backlog', 'Webhook deliveries not yet delivered', [], () =>
        this.optional('webhookBacklog', this.sources.webhookBacklog),
      ),
    );
    r.register(
      new Gauge('analysis_queue_depth', 'Post-call analyses waiting or running', [], () =>
        this.optional('analysisQueue', this.sources.analysisQueue),
      ),
    );
    this.loop.enable();
    r.register(
      new Gauge('nodejs_eventloop_lag_seconds', 'Event-loop delay since the previous scrape (stat: p50, p99, max, mean)', ['stat'], () => {
        const h = this.loop;
        const s = (ns: number) => (Number.isFinite(ns) ? ns / 1e9 : 0);
        const out = [
          { labels: { stat: 'p50' }, value: s(h.percentile(50)) },
          { labels: { stat: 'p99' }, value: s(h.percentile(99)) },
          { labels: { stat: 'max' }, value: s(h.max) },
          { labels: { stat: 'mean' }, value: s(h.mean) },
        ];
        h.reset();
        return out;
      }),
    );
    r.register(
      new Gauge(
        'db_pool_connections',
        'Database pool connections by state (total, idle, waiting); absent for the embedded database',
        ['state'],
        () => {
          const p = this.sources.dbPool?.();
          return p
            ? [
                { labels: { state: 'total' }, value: p.total },
                { labels: { state: 'idle' }, value: p.idle },
                { labels: { state: 'waiting' }, value: p.waiting },
              ]
            : [];
        },
      ),
    );
  }

  /** Points a scrape-time gauge at its source (the composition root; the lead's webhook and analysis tables). */
  setSource<K extends keyof MetricSources>(name: K, source: MetricSources[K]): void {
    this.sources[name] = source;
    // A value cached from the source it replaces is not this source's.
    this.cache.delete(name);
  }

  callEvent(tenantId: string, type: string, data: unknown): void {
    const d = (data ?? {}) as Record<string, unknown>;
    const tenant: Record<string, string> = this.tenantLabels ? { tenant_id: tenantId } : {};
    if (type === 'call.started') this.callsStarted.inc({ direction: String(d.direction), ...tenant });
    else if (type === 'call.ended')
      this.callsEnded.inc({ status: oneOf(CALL_STATUSES, d.status), reason: endedReasonOf(String(d.reason)), ...tenant });
    else if (type === 'provider.fallback' || type === 'provider.failed') {
      const stage = oneOf(['stt', 'llm', 'tts'], d.stage);
      const provider = typeof d.provider === 'string' && PROVIDER_NAME.test(d.provider) ? d.provider : 'other';
      // A fallback: the next engine took over. A failure: none was left (the call ended or went on without that reply).
      if (type === 'provider.fallback') this.fallbacks.inc({ stage, provider });
      this.providerErrors.inc({ stage, provider, reason: oneOf(PROVIDER_FAILURES, d.reason) });
    }
  }

  /** A stored turn's latencies (ms): one histogram observation per known stage. */
  turn(metrics: Record<string, number> | undefined): void {
    if (!metrics) return;
    for (const stage of TURN_STAGES) {
      const ms = metrics[stage];
      if (typeof ms === 'number') this.stages.observe({ stage }, ms / 1000);
    }
  }

  /** One delivery attempt of a webhook (the delivery worker calls it): seconds since the event was stored. */
  webhookDelivery(outcome: 'delivered' | 'failed', seconds: number): void {
    this.webhookDeliveries.observe({ outcome }, seconds);
  }

  /** A Twilio call's agent audio as sent (ms between two media messages of one utterance): every frame, so cheap. */
  frameGap(ms: number): void {
    this.frameGaps.observe({}, ms / 1000);
  }

  refused(code: string, kind: string): void {
    this.callsRefused.inc({ code, kind });
  }

  expose(onError?: (name: string, err: unknown) => void): Promise<string> {
    return this.registry.expose(onError);
  }

  close(): void {
    this.loop.disable();
  }

  private readonly cache = new Map<string, { at: number; value: Promise<unknown> }>();

  /**
   * A database-backed value, reused for cacheMs (default 5 s) however often it is scraped, and given up on after
   * timeoutMs (default 2 s) so a slow database cannot hold the scrape.
   */
  private bounded<T>(key: string, source: (() => Promise<T>) | undefined): Promise<T | undefined> {
    if (!source) return Promise.resolve(undefined);
    const now = (this.opts.now ?? Date.now)();
    const hit = this.cache.get(key);
    if (hit && now - hit.at < (this.opts.cacheMs ?? 5000)) return hit.value as Promise<T>;
    const timeoutMs = this.opts.timeoutMs ?? 2000;
    const value = Promise.race([
      source(),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${key} took over ${timeoutMs} ms`)), timeoutMs).unref()),
    ]);
    // A failure is not cached: the next scrape asks again.
    value.catch(() => this.cache.delete(key));
    this.cache.set(key, { at: now, value });
    return value;
  }

  /** A single database-backed number, or no sample at all when no source is set. */
  private async optional(key: string, source: (() => Promise<number>) | undefined) {
    const v = await this.bounded(key, source);
    return v === undefined ? [] : v;
  }
}
