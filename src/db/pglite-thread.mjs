// The embedded database's thread (client.ts, EMBEDDED_DB_THREAD): PGlite served over the Postgres wire protocol on
// a Unix socket (pglite-server.ts), so the service's queries run here and not on the event loop that carries live
// calls. Plain JavaScript so that any Node starts it (a worker does not inherit the tsx loader).
import { parentPort, workerData } from 'node:worker_threads';
import { existsSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { URL } from 'node:url';

// A lower scheduling priority for this thread than the event loop's (Linux: a thread has its own nice value, set
// through its thread id). On a busy core the event loop then runs first and the calls' audio goes out on time,
// while the queries, which nobody hears, take the time it leaves; an idle core runs them at once as before.
// Best effort: elsewhere, or refused, nothing changes.
/** This thread's nice value (0 is the process's, 19 the lowest priority): about a tenth of a contended core. */
const DB_THREAD_NICE = 10;
try {
  os.setPriority(Number(readlinkSync('/proc/thread-self').split('/').pop()), DB_THREAD_NICE);
} catch {
  // Not Linux, or not allowed: the thread keeps the process's priority.
}

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
