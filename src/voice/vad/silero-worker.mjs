// The worker thread of off-thread Silero VADs (silero-vad.ts): runs the windows it is sent with the model state it
// keeps for each call, and sends the probabilities back. Plain JavaScript so that any Node starts it (a worker does
// not inherit the tsx loader); the model code itself is loaded through tsx in
// development.
import { parentPort } from 'node:worker_threads';
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

// In the compiled build (dist/) the module is JavaScript next to this file; in development it is TypeScript, loaded
// through tsx (imported only then: production has no TypeScript toolchain).
const compiled = new URL('./silero-vad.js', import.meta.url);
const { runEntries, warmModel } = existsSync(compiled)
  ? await import(compiled.href)
  : await (await import('tsx/esm/api')).tsImport('./silero-vad.ts', import.meta.url);

parentPort.on('message', (message) => {
  if (Array.isArray(message)) parentPort.postMessage(runEntries(message));
  else warmModel(message.warm);
});
