// The bounded pool of worker threads that does all document work (extraction, chunking, local embedding), so no
// document can stall the main event loop (live calls, /health) or take the process down with it. Each worker has a
// hard heap cap (resourceLimits) and each job a wall-time budget; a worker past either is terminated and replaced,
// and its job fails with a readable, permanent reason.
import { Worker } from 'node:worker_threads';
import type { Chunk } from './chunking.js';
import type { DocumentJob, DocumentJobResult } from './document-job.js';
import type { Embedder } from './embedders/embedder.js';
import { type DocumentFormat, ExtractError, type ExtractLimits } from './extract.js';

export interface DocumentPoolOptions {
  /** Worker threads at most (each runs one job at a time). */
  size: number;
  /** Each worker's V8 heap cap. */
  maxOldGenerationSizeMb: number;
  /** Wall-time budget of one job, from the moment a ready worker receives it. */
  jobTimeoutMs: number;
  limits: ExtractLimits;
  maxChunks: number;
}

interface Pending {
  job: DocumentJob;
  resolve: (r: DocumentJobResult) => void;
  reject: (err: Error) => void;
  signal?: AbortSignal;
}

interface Slot {
  worker: Worker;
  ready: boolean;
  running?: Pending & { id: number; timer: NodeJS.Timeout; onAbort: () => void };
}

const EXTRACT_CODES = new Set(['empty_document', 'unsupported_format', 'corrupt_document', 'encrypted_document', 'document_too_complex']);

export class DocumentPool {
  private readonly slots = new Set<Slot>();
  private readonly queue: Pending[] = [];
  private nextId = 1;
  private closed = false;

  constructor(readonly opts: DocumentPoolOptions) {}

  /** Extracts and chunks one document in a worker. Failures are ExtractErrors (permanent: retrying changes nothing). */
  async chunk(bytes: Uint8Array, format: DocumentFormat, signal?: AbortSignal): Promise<Chunk[]> {
    const r = await this.run({ kind: 'chunk', bytes, format, limits: this.opts.limits, maxChunks: this.opts.maxChunks }, signal);
    return r.kind === 'chunk' ? r.chunks : [];
  }

  /** The local embedder's work, done in the pool: same model name and vectors, no CPU on the main thread. */
  embedder(local: Embedder): Embedder {
    return {
      model: local.model,
      dimensions: local.dimensions,
      maxBatchSize: local.maxBatchSize,
      lexical: local.lexical,
      embed: async (texts, o) => {
        const r = await this.run({ kind: 'embed', texts, dimensions: local.dimensions }, o?.signal);
        return r.kind === 'embed' ? r.vectors : [];
      },
    };
  }

  run(job: DocumentJob, signal?: AbortSignal): Promise<DocumentJobResult> {
    if (this.closed) return Promise.reject(new Error('the document pool is closed'));
    signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      this.queue.push({ job, resolve, reject, signal });
      this.dispatch();
    });
  }

  /** Terminates every worker; jobs still queued or running fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new Error('the document pool is closed'));
    await Promise.all([...this.slots].map((s) => this.retire(s, new Error('the document pool is closed'))));
  }

  private dispatch(): void {
    while (this.queue.length) {
      const idle = [...this.slots].find((s) => s.ready && !s.running);
      if (!idle) {
        if (this.slots.size < this.opts.size) this.spawn();
        return;
      }
      const p = this.queue.shift()!;
      if (p.signal?.aborted) {
        p.reject(p.signal.reason as Error);
        continue;
      }
      this.start(idle, p);
    }
  }

  private start(slot: Slot, p: Pending): void {
    const id = this.nextId++;
    const timer = setTimeout(() => {
      void this.retire(
        slot,
        new ExtractError(
          'document_too_complex',
          `Processing took longer than the ${Math.round(this.opts.jobTimeoutMs / 1000)} s allowed per document`,
        ),
      );
    }, this.opts.jobTimeoutMs);
    // Shutdown: the job's worker is stopped at once rather than left to finish.
    const onAbort = () => void this.retire(slot, (p.signal?.reason as Error) ?? new Error('aborted'));
    p.signal?.addEventListener('abort', onAbort, { once: true });
    slot.running = { ...p, id, timer, onAbort };
    slot.worker.postMessage({ id, job: p.job });
  }

  private finish(slot: Slot): (Slot['running'] & object) | undefined {
    const r = slot.running;
    if (!r) return undefined;
    slot.running = undefined;
    clearTimeout(r.timer);
    r.signal?.removeEventListener('abort', r.onAbort);
    return r;
  }

  private spawn(): void {
    const worker = new Worker(new URL('./document-worker.mjs', import.meta.url), {
      // No execArgv: the worker loads its TypeScript itself (a parent's `--import x.ts` preload would kill it).
      execArgv: [],
      resourceLimits: { maxOldGenerationSizeMb: this.opts.maxOldGenerationSizeMb },
    });
    worker.unref();
    const slot: Slot = { worker, ready: false };
    this.slots.add(slot);
    worker.on(
      'message',
      (m: { ready?: true; id?: number; ok?: boolean; result?: DocumentJobResult; error?: { code?: string; message: string } }) => {
        if (m.ready) {
          slot.ready = true;
          this.dispatch();
          return;
        }
        if (slot.running?.id !== m.id) return;
        const r = this.finish(slot)!;
        if (m.ok) r.resolve(m.result!);
        else r.reject(toExtractError(m.error!));
        this.dispatch();
      },
    );
    worker.on('error', (err: Error & { code?: string }) => {
      if (!slot.ready) {
        // A worker that cannot even start is our fault, not the document's: what waits fails as transient.
        const reason = new Error(`the document worker failed to start (${err.message})`);
        for (const p of this.queue.splice(0)) p.reject(reason);
        void this.retire(slot, reason);
        return;
      }
      const reason =
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? new ExtractError(
              'document_too_complex',
              `Processing needed more than the ${this.opts.maxOldGenerationSizeMb} MB of memory allowed per document`,
            )
          : new ExtractError('corrupt_document', `The document could not be processed (${err.message})`);
      void this.retire(slot, reason);
    });
    worker.on('exit', () => void this.retire(slot, new ExtractError('corrupt_document', 'The document worker stopped unexpectedly')));
  }

  /** Takes a worker out of the pool for good (its job, if any, fails with `reason`); the next job spawns a fresh one. */
  private async retire(slot: Slot, reason: Error): Promise<void> {
    if (!this.slots.delete(slot)) return;
    this.finish(slot)?.reject(reason);
    await slot.worker.terminate().catch(() => {});
    if (!this.closed) this.dispatch();
  }
}

function toExtractError(e: { code?: string; message: string }): ExtractError {
  if (e.code && EXTRACT_CODES.has(e.code)) return new ExtractError(e.code as ExtractError['code'], e.message);
  // Anything else a parser throws on a hostile file (a RangeError, a library's own error) is still about the file.
  return new ExtractError('corrupt_document', `The document could not be processed (${e.message})`);
}
