// What the background thread runs (background-thread.mjs, started by background.ts): the webhook delivery worker and
// the post-call analysis worker, built here from the service's configuration with their own small `pg` pool to the
// same database. Their HTTP requests, JSON, signatures, decryption and queries then run beside the event loop that
// carries live calls' audio, not on it. Messages from the service: `wake-webhooks`, `wake-analysis`, `stop`; to it:
// `ready`, `attempt` (each delivery attempt, for the operator metrics), `stopped`, `error`.
import { lowerThreadPriority, THREAD_NICE } from './lib/thread-priority.js';
import type { MessagePort } from 'node:worker_threads';
import pino from 'pino';
import { AnalyzerRegistry } from './analysis/analyzers.js';
import { ANALYSIS_WORKER_OPTIONS, AnalysisWorker } from './analysis/worker.js';
import type { Config } from './config.js';
import { connectDatabase, type Database, type DatabaseConnection } from './db/client.js';
import { errSerializer } from './lib/error-log.js';
import { OutboundGuard } from './lib/outbound.js';
import { CallAnalysisService } from './services/call-analyses.js';
import { CallService } from './services/calls.js';
import { SecretBox } from './services/secret-box.js';
import { SettingsService } from './services/settings.js';
import { WebhookDeliveryWorker } from './services/webhook-delivery.js';
import { WEBHOOK_CHANNEL } from './services/outbox.js';
import { WebhookService } from './services/webhooks.js';

export interface BackgroundData {
  config: Config;
  connection: DatabaseConnection;
  kind: Database['kind'];
  /** The embedded database is this process's alone: claims left by an earlier run (or a crashed thread) are released. */
  reclaimAbandoned: boolean;
}

export type ToBackground = 'wake-webhooks' | 'wake-analysis' | 'stop';
export type FromBackground =
  | { type: 'ready' }
  | { type: 'attempt'; outcome: 'delivered' | 'failed'; seconds: number }
  | { type: 'stopped' }
  | { type: 'error'; message: string };

/** Connections of the thread's own pool: deliveries settle one statement each, analysis runs one job at a time. */
const POOL_MAX = 3;

export async function runBackgroundWork(data: BackgroundData, port: MessagePort): Promise<void> {
  // Below the event loop that carries the calls (lib/thread-priority.ts).
  lowerThreadPriority('background', THREAD_NICE.background);
  const { config } = data;
  const send = (m: FromBackground) => port.postMessage(m);
  const log = pino({ level: config.logLevel, serializers: { err: errSerializer } }).child({ thread: 'background' });
  const database = connectDatabase(data.connection, Math.min(POOL_MAX, config.databasePoolMax), data.kind);
  const db = database.db;
  const box = new SecretBox(config.secretKeys);
  const outbound = new OutboundGuard(config.outbound);
  const webhooks = new WebhookService(db, box, outbound, { maxEndpointsPerTenant: config.webhooks.maxEndpointsPerTenant });
  const delivery = new WebhookDeliveryWorker(db, webhooks, outbound.fetch, log.child({ component: 'webhooks' }), {
    ...config.webhooks,
    onAttempt: (outcome, seconds) => send({ type: 'attempt', outcome, seconds }),
    // Woken by publishEvent's NOTIFY at commit, from any thread or instance.
    listen: (onNotify) => database.listen(WEBHOOK_CHANNEL, onNotify),
  });
  const wake = { analysis: () => {} };
  const analyses = new CallAnalysisService(db, () => wake.analysis());
  const analysis = new AnalysisWorker(
    db,
    new CallService(db),
    analyses,
    new AnalyzerRegistry(new SettingsService(db, box), config.credentials, outbound.fetch),
    log.child({ component: 'analysis' }),
    ANALYSIS_WORKER_OPTIONS,
  );
  wake.analysis = () => analysis.wake();
  let stopping: Promise<void> | undefined;
  const started = (async () => {
    await analysis.start({ reclaimAbandoned: data.reclaimAbandoned });
    await delivery.start({ reclaimAbandoned: data.reclaimAbandoned });
  })();
  port.on('message', (m: ToBackground) => {
    if (m === 'wake-webhooks') delivery.wake();
    else if (m === 'wake-analysis') analysis.wake();
    else if (m === 'stop')
      stopping ??= (async () => {
        // A stop that comes while the workers start waits for them, so none is left running.
        await started.catch(() => {});
        await analysis.stop();
        await delivery.stop();
        await database.close().catch(() => {});
        send({ type: 'stopped' });
      })();
  });
  await started;
  send({ type: 'ready' });
}
