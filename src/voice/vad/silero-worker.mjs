// The worker thread of off-thread Silero VADs (silero-vad.ts): runs the windows it is sent with the model state it
// keeps for each call, and sends the probabilities back. Plain JavaScript so that any Node starts it (a worker does
// not inherit the tsx loader); the model code itself is loaded through tsx.
import { parentPort } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

const { runEntries, warmModel } = await tsImport('./silero-vad.ts', import.meta.url);

parentPort.on('message', (message) => {
  if (Array.isArray(message)) parentPort.postMessage(runEntries(message));
  else warmModel(message.warm);
});
