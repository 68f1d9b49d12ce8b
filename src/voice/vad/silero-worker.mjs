// The worker thread of off-thread Silero VADs (silero-vad.ts): runs each batch of windows it is sent and sends the
// results back; the model is loaded here once, on the first batch. Plain JavaScript so that any Node starts it
// (a worker does not inherit the tsx loader); the model code itself is loaded through tsx.
import { parentPort } from 'node:worker_threads';
import { tsImport } from 'tsx/esm/api';

const { runModel } = await tsImport('./silero-vad.ts', import.meta.url);

parentPort.on('message', ({ id, windows }) => {
  const result = runModel(windows);
  parentPort.postMessage({ id, result }, [result.probabilities.buffer, result.states.buffer]);
});
