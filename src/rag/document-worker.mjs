// A document worker thread (document-pool.ts): runs the jobs of document-job.ts one at a time. Plain JavaScript so
// that any Node starts it (a worker does not inherit the tsx loader); the job code itself is loaded through tsx.
import { parentPort } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

const { runDocumentJob } = await tsImport('./document-job.ts', import.meta.url);

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
