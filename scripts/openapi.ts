// npm run openapi: writes the API's OpenAPI document to web/openapi.json, which the console's types are generated
// from (npm run web:types). The app is built on a throw-away in-memory database with a fixed configuration, so no
// database, network or data folder is needed and the output depends on the code alone. test/openapi-dump.test.ts
// fails when the committed file is stale.
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { buildDeps, closeDeps } from '../src/deps.js';
import { buildApp } from '../src/http/app.js';

const OPENAPI_DUMP = 'web/openapi.json';

const out = path.resolve(process.argv[2] ?? OPENAPI_DUMP);
const config = loadConfig({
  NODE_ENV: 'test',
  DATA_DIR: 'memory://',
  // Never used to sign anything that leaves this process.
  SECRET_KEY: 'openapi-dump-only-secret-key-0123456789abcdef',
  INGEST_CONCURRENCY: '0',
  WEBHOOK_DELIVERY_CONCURRENCY: '0',
  CONSOLE_DIR: path.join(tmpdir(), 'va-openapi-no-console'),
});
const log = pino({ level: 'silent' });
const deps = await buildDeps(config, log);
try {
  const app = await buildApp(deps);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(app.swagger(), null, 2)}\n`);
  await app.close();
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
} finally {
  await closeDeps(deps);
}
