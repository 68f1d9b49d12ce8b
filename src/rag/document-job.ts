// What a document worker thread does (document-pool.ts sends the jobs): extract and chunk one document within the
// limits, or embed a batch with the local embedder. Runs off the main thread; any failure comes back as an
// ExtractError-shaped { code, message }, so a bad file is always a readable, permanent refusal.
import { lowerThreadPriority, THREAD_NICE } from '../lib/thread-priority.js';
import { type Chunk, chunkBlocks } from './chunking.js';
import { LocalEmbedder } from './embedders/local-embedder.js';
import { type DocumentFormat, ExtractError, type ExtractLimits, extractBlocks } from './extract.js';

export type DocumentJob =
  | { kind: 'chunk'; bytes: Uint8Array; format: DocumentFormat; limits: ExtractLimits; maxChunks: number }
  | { kind: 'embed'; texts: string[]; dimensions: number };

export type DocumentJobResult = { kind: 'chunk'; chunks: Chunk[] } | { kind: 'embed'; vectors: Float32Array[] };

const embedders = new Map<number, LocalEmbedder>();

export async function runDocumentJob(job: DocumentJob): Promise<DocumentJobResult> {
  // On a document worker thread: below the event loop (lib/thread-priority.ts); done at its first job, then a no-op.
  lowerThreadPriority('documents', THREAD_NICE.documents);
  if (job.kind === 'embed') {
    let embedder = embedders.get(job.dimensions);
    if (!embedder) embedders.set(job.dimensions, (embedder = new LocalEmbedder(job.dimensions)));
    return { kind: 'embed', vectors: await embedder.embed(job.texts) };
  }
  const chunks = chunkBlocks(await extractBlocks(job.bytes, job.format, job.limits));
  if (chunks.length > job.maxChunks) {
    throw new ExtractError('document_too_complex', `The document makes ${chunks.length} chunks (the limit is ${job.maxChunks})`);
  }
  return { kind: 'chunk', chunks };
}
