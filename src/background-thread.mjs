// The background thread (background.ts): webhook delivery and post-call analysis, off the event loop that carries
// live calls. Plain JavaScript so that any Node starts it (a worker does not inherit the tsx loader); the work itself
// is loaded through tsx in development.
import process from 'node:process';
import { parentPort, workerData } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

// In the compiled build (dist/) the module is JavaScript next to this file; in development it is TypeScript, loaded
// through tsx (imported only then: production has no TypeScript toolchain).
const compiled = new URL('./background-work.js', import.meta.url);
const { runBackgroundWork } = existsSync(compiled)
  ? await import(compiled.href)
  : await (await import('tsx/esm/api')).tsImport('./background-work.ts', import.meta.url);

try {
  await runBackgroundWork(workerData, parentPort);
} catch (err) {
  parentPort.postMessage({ type: 'error', message: String(err?.stack ?? err?.message ?? err) });
  // The thread ends (its pool would keep it alive): the service starts it again.
  process.exit(1);
}
