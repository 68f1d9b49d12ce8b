// The embedded database's thread (client.ts, EMBEDDED_DB_THREAD): PGlite served over the Postgres wire protocol on
// a Unix socket (pglite-server.ts), so the service's queries run here and not on the event loop that carries live
// calls. Plain JavaScript so that any Node starts it (a worker does not inherit the tsx loader).
import { parentPort, workerData } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

// In the compiled build (dist/) the module is JavaScript next to this file; in development it is TypeScript, loaded
// through tsx (imported only then: production has no TypeScript toolchain).
const compiled = new URL('./pglite-server.js', import.meta.url);
const { startPgliteServer } = existsSync(compiled)
  ? await import(compiled.href)
  : await (await import('tsx/esm/api')).tsImport('./pglite-server.ts', import.meta.url);

try {
  const server = await startPgliteServer(workerData);
  parentPort.on('message', async (message) => {
    if (message !== 'close') return;
    await server.close();
    parentPort.postMessage({ closed: true });
  });
  parentPort.postMessage({ ready: true });
} catch (err) {
  parentPort.postMessage({ error: String(err?.message ?? err) });
}
