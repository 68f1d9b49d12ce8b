// Entry point: config -> deps -> server, and a graceful shutdown on SIGTERM/SIGINT.
import pino from 'pino';
import { ConfigError, loadConfig } from './config.js';
import { buildDeps, closeDeps } from './deps.js';
import { buildApp, LOG_SERIALIZERS, REDACT_PATHS } from './http/app.js';

const startedAt = performance.now();
let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(78); // EX_CONFIG
  }
  throw err;
}
const log = pino({ level: config.logLevel, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, serializers: LOG_SERIALIZERS });
const deps = await buildDeps(config, log).catch((err: unknown) => {
  // A configuration only the stored data shows to be wrong (a SECRET_KEY that opens none of the stored secrets).
  if (!(err instanceof ConfigError)) throw err;
  console.error(err.message);
  process.exit(78);
});
const app = await buildApp(deps);
await app.listen({ host: config.host, port: config.port });
log.info(
  { database: deps.database.kind, redis: Boolean(config.redisUrl), startup_ms: Math.round(performance.now() - startedAt) },
  `ready on http://${config.host}:${config.port} (docs at /docs)`,
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  log.info({ signal }, 'shutting down: no new requests, finishing the ones in flight');
  // A stuck request must not keep the process alive forever.
  setTimeout(() => {
    log.error('shutdown took longer than 15 s; exiting');
    process.exit(1);
  }, 15_000).unref();
  // Live calls end properly (records, recordings) before their sockets close with the server.
  if (deps.voice.active) log.info({ calls: deps.voice.active }, 'ending live calls');
  await deps.voice.drain(10_000);
  await app.close();
  await closeDeps(deps);
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
