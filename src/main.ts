// Entry point: config -> deps -> server, and a graceful shutdown on SIGTERM/SIGINT.
import { createServer } from 'node:net';
import { createRequire } from 'node:module';
import pino, { type DestinationStream } from 'pino';
import { ConfigError, loadConfig, productionWarnings } from './config.js';
import { SchemaNotCurrentError } from './db/client.js';
import { buildDeps, closeDeps } from './deps.js';
import { buildApp, LOG_SERIALIZERS, REDACT_PATHS } from './http/app.js';
import { EXIT_CODES, socketErrorCode, StartupError } from './lib/startup-error.js';
import { lowerOtherThreads, THREAD_NICE } from './lib/thread-priority.js';

/** A start-up failure a person can act on: one line on stderr, an exit code per cause (lib/startup-error.ts). */
function exitOn(err: unknown): never {
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(EXIT_CODES.config);
  }
  if (err instanceof StartupError) {
    console.error(err.message);
    process.exit(err.exitCode);
  }
  throw err;
}

/** A failed bind (EADDRINUSE...) as a StartupError naming the variable to change; anything else as it is. */
function listenFailure(err: unknown, host: string, port: number): unknown {
  const code = socketErrorCode(err);
  if (code === 'EADDRINUSE') return new StartupError('portInUse', `port ${port} is in use on ${host}: stop what holds it or set PORT`);
  if (code === 'EACCES') return new StartupError('portInUse', `port ${port} needs privileges this process lacks: set PORT above 1023`);
  if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
    return new ConfigError(
      `Invalid configuration:\n  HOST: ${host} is not an address of this machine (${code}): set HOST, e.g. 127.0.0.1 or 0.0.0.0`,
    );
  }
  return err;
}

/**
 * Binds HOST:PORT once and lets it go, before the embedded database's first boot (seconds of initdb) rather than
 * after it. Another process may still take the port in between: app.listen maps that the same way.
 */
async function checkPortFree(host: string, port: number): Promise<void> {
  if (port === 0) return;
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host, port, exclusive: true }, resolve);
  }).catch((err: unknown) => {
    throw listenFailure(err, host, port);
  });
  await new Promise<void>((resolve) => probe.close(() => resolve()));
}

/**
 * ./.env, as the simulator reads it: variables already set in the environment win (Node's loadEnvFile sets only
 * the missing ones). No file is fine; config.ts still does all the parsing.
 */
function loadDotEnv(): void {
  try {
    process.loadEnvFile('.env');
  } catch (err) {
    if ((err as { code?: string }).code !== 'ENOENT') throw new ConfigError(`Invalid configuration:\n  .env: ${(err as Error).message}`);
  }
}

/**
 * In a terminal outside production, lines a person reads (pino-pretty, in pino's worker thread); JSON otherwise (a
 * pipe, a file, a log collector). Without pino-pretty installed, JSON everywhere.
 */
function prettyStream(env: string): DestinationStream | undefined {
  if (!process.stdout.isTTY || env === 'production') return undefined;
  try {
    createRequire(import.meta.url).resolve('pino-pretty');
  } catch {
    return undefined;
  }
  return pino.transport({ target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' } });
}

// First, while the only other threads are Node's own (V8's GC and compiler workers...): below the event loop.
lowerOtherThreads(THREAD_NICE.node);
const startedAt = performance.now();
let config;
try {
  loadDotEnv();
  config = loadConfig();
  await checkPortFree(config.host, config.port);
} catch (err) {
  exitOn(err);
}
const log = pino(
  { level: config.logLevel, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, serializers: LOG_SERIALIZERS },
  prettyStream(config.env),
);
for (const warning of productionWarnings(config)) log.warn(warning);
const deps = await buildDeps(config, log).catch((err: unknown) => {
  // MIGRATE_ON_START=false and migrations pending: one line saying what to run, not a stack trace.
  if (!(err instanceof SchemaNotCurrentError)) exitOn(err);
  console.error(err.message);
  process.exit(1);
});
const app = await buildApp(deps);
await app.listen({ host: config.host, port: config.port }).catch(async (err: unknown) => {
  await closeDeps(deps).catch(() => {});
  exitOn(listenFailure(err, config.host, config.port));
});
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
