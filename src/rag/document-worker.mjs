// A document worker thread (document-pool.ts): runs the jobs of document-job.ts one at a time. Plain JavaScript so
// that any Node starts it (a worker does not inherit the tsx loader); the job code itself is loaded through tsx
// in development.
import { parentPort } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

// In the compiled build (dist/) the module is JavaScript next to this file; in development it is TypeScript, loaded
// through tsx (imported only then: production has no TypeScript toolchain).
const compiled = new URL('./document-job.js', import.meta.url);
const { runDocumentJob } = existsSync(compiled)
  ? await import(compiled.href)
  : await (await import('tsx/esm/api')).tsImport('./document-job.ts', import.meta.url);

parentPort.on('message', async ({ id, job }) => {
  try {
    parentPort.postMessage({ id, ok: true, result: await runDocumentJob(job) });
  } catch (err) {
    // Only plain fields cross the thread boundary: the code (when it is an ExtractError's) and the message.
    const code = typeof err?.code === 'string' ? err.code : undefined;
    parentPort.postMessage({ id, ok: false, error: { code, message: String(err?.message ?? err) } });
  }
});
parentPort.postMessage({ ready: true });
