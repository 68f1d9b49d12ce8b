// The ingestion worker: claims queued documents from the database (FOR UPDATE SKIP LOCKED, so any number of
// instances share the queue), extracts, chunks, embeds in batches and stores. Each batch is committed with
// the document's progress, so a worker that dies loses at most one batch: whoever claims the document next
// (after the lease runs out, or at once on an embedded database after a restart) skips what is stored.
// Chunks are written under the document's new version and only become searchable in the final swap.
// The swap (or the final failure) publishes `document.ready` (`document.failed`) in its own transaction.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { and, eq, ne, sql } from 'drizzle-orm';
import type { FastifyBaseLogger } from 'fastify';
import { type Db, rowsOf } from '../db/client.js';
import { readParts } from '../db/document-parts.js';
import { documentChunks, documents } from '../db/schema.js';
import { nextTurn } from '../lib/event-loop.js';
import { ProviderError } from '../lib/provider-error.js';
import { publishEvent } from '../services/outbox.js';
import { BM25_ANALYZER, chunkTerms, chunkVector } from './bm25.js';
import type { Chunk } from './chunking.js';
import type { Embedder } from './embedders/embedder.js';
import { type DocumentFormat, ExtractError } from './extract.js';
import { WorkerLoops } from '../lib/worker-loops.js';
import { analyzeKnowledgeIfStale, replaceInTermStats } from './term-stats.js';

export interface IngestionOptions {
  /** Documents processed at once by this instance. */
  concurrency: number;
  /** A claim not renewed for this long is considered abandoned and may be taken over. */
  leaseMs: number;
  maxAttempts: number;
  /** How often an idle worker looks for work queued by other instances. */
  pollMs?: number;
  /**
   * Chunks written per transaction (default 16). On the embedded database each statement runs on the main thread:
   * 8 rows keep a write at ~20 ms (16 rows: ~40 ms, and 200-450 ms spikes on a busy machine late in a 15,000-chunk
   * document; bench:isolation --full: longest /health gap 590 ms with 16, 319 ms with 8).
   */
  writeBatchRows?: number;
}

export interface EmbedderSource {
  forTenant(tenantId: string): Promise<Embedder>;
}

/** Extraction and chunking, done off the main thread (DocumentPool); its failures are ExtractErrors. */
export interface DocumentProcessor {
  chunk(bytes: Uint8Array, format: DocumentFormat, signal?: AbortSignal): Promise<Chunk[]>;
}

interface Claim {
  id: string;
  tenant_id: string;
  version: number;
  attempts: number;
}

/** The document was deleted, replaced, or claimed by another worker meanwhile: stop without writing. */
class Superseded extends Error {}
/** Too many claims that never finished. */
class GaveUp extends Error {}

const BACKOFF_BASE_MS = 2_000;
const BACKOFF_MAX_MS = 5 * 60_000;

export class IngestionWorker {
  /** Names the host and process too, so an operator (or the scale-out test) sees which instance holds a document. */
  readonly workerId = `worker-${hostname()}-${process.pid}-${randomUUID()}`;
  private readonly abort = new AbortController();
  private readonly loops: WorkerLoops;

  constructor(
    private readonly db: Db,
    private readonly embedders: EmbedderSource,
    private readonly processor: DocumentProcessor,
    private readonly log: FastifyBaseLogger,
    private readonly opts: IngestionOptions,
  ) {
    this.loops = new WorkerLoops(
      () => this.runOnce(),
      (err) => this.log.error({ err: loggable(err) }, 'ingestion loop error'),
      opts.pollMs ?? 1_000,
    );
  }

  /**
   * `reclaimOwn`: an embedded database belongs to this process alone, so anything left `processing` was held
   * by a process that is gone and is taken back at once instead of after the lease.
   */
  async start(opts: { reclaimAbandoned?: boolean } = {}): Promise<void> {
    if (opts.reclaimAbandoned) {
      await this.db
        .update(documents)
        .set({ status: 'pending', lockedBy: null, lockedAt: null, nextAttemptAt: new Date() })
        .where(eq(documents.status, 'processing'));
    }
    this.loops.start(this.opts.concurrency);
  }

  /** Starts nothing new; the document in flight stops after its current batch and is released to the queue. */
  async stop(): Promise<void> {
    const stopped = this.loops.stop(); // first, so that the aborted work's error is not logged as a failure
    this.abort.abort();
    await stopped;
  }

  wake(): void {
    this.loops.wake();
  }

  /** Claims and processes one document; false when the queue had nothing due. */
  async runOnce(): Promise<boolean> {
    const claim = await this.claim();
    if (!claim) return false;
    const log = this.log.child({ documentId: claim.id, version: claim.version, attempt: claim.attempts });
    const heartbeat = setInterval(() => void this.renew(claim).catch(() => {}), Math.max(250, this.opts.leaseMs / 3));
    try {
      // Claims count attempts too: a document whose worker dies every time (say, out of memory) must not
      // take the service down forever.
      if (claim.attempts > this.opts.maxAttempts) throw new GaveUp(`Gave up after ${claim.attempts - 1} attempts that never finished`);
      const started = Date.now();
      const chunks = await this.ingest(claim);
      log.info({ chunks, ms: Date.now() - started }, 'document ready');
      // The embedded database never analyzes its tables by itself (no autovacuum); search's plan depends on it.
      await analyzeKnowledgeIfStale(this.db).catch((err: unknown) => log.warn({ err }, 'ANALYZE of the knowledge tables failed'));
    } catch (err) {
      if (err instanceof Superseded) log.info('document changed or was taken over during ingestion; stopped');
      else if (this.abort.signal.aborted) await this.release(claim, log);
      else await this.fail(claim, err, log);
    } finally {
      clearInterval(heartbeat);
    }
    return true;
  }

  private async claim(): Promise<Claim | undefined> {
    const leaseSeconds = this.opts.leaseMs / 1000;
    const rows = rowsOf<Claim>(
      await this.db.execute(sql`
        update documents d
        set status = 'processing', locked_by = ${this.workerId}, locked_at = now(), attempts = d.attempts + 1, updated_at = now()
        where d.id = (
          select id from documents
          where (status = 'pending' and next_attempt_at <= now())
             or (status = 'processing' and locked_at < now() - make_interval(secs => ${leaseSeconds}))
          order by next_attempt_at
          limit 1
          for update skip locked)
        returning d.id, d.tenant_id, d.version, d.attempts`),
    );
    return rows[0];
  }

  /**
   * Shutdown: hands the document back at once (another instance, or this one after its restart, resumes it)
   * instead of leaving it leased; the interrupted attempt does not count against it.
   */
  private async release(claim: Claim, log: FastifyBaseLogger): Promise<void> {
    await this.db
      .update(documents)
      .set({
        status: 'pending',
        lockedBy: null,
        lockedAt: null,
        attempts: sql`greatest(${documents.attempts} - 1, 0)`,
        nextAttemptAt: new Date(),
      })
      .where(and(eq(documents.id, claim.id), eq(documents.lockedBy, this.workerId)))
      .catch((err: unknown) => log.warn({ err }, 'could not release the document at shutdown'));
    log.info('ingestion interrupted by shutdown; the document was released and resumes at the next claim');
  }

  private async renew(claim: Claim): Promise<void> {
    await this.db
      .update(documents)
      .set({ lockedAt: new Date() })
      .where(and(eq(documents.id, claim.id), eq(documents.lockedBy, this.workerId), eq(documents.version, claim.version)));
  }

  private async ingest(claim: Claim): Promise<number> {
    const [doc] = await this.db.select({ format: documents.format }).from(documents).where(eq(documents.id, claim.id));
    if (!doc) throw new Superseded();
    // Read in parts, as stored: the whole file in one statement held the embedded database (the main thread) ~0.4 s.
    const source = await readParts(this.db, claim.id);
    if (source.length === 0) throw new ExtractError('empty_document', 'The document has no stored content');
    const chunks = await this.processor.chunk(source, doc.format, this.abort.signal);
    const embedder = await this.embedders.forTenant(claim.tenant_id);

    // Resume: chunks of this version already stored with this model are kept; any of another model (the
    // setting changed between attempts) are redone.
    const done = await this.db.transaction(async (tx) => {
      await this.lockOwned(tx, claim);
      await tx
        .delete(documentChunks)
        .where(
          and(
            eq(documentChunks.documentId, claim.id),
            eq(documentChunks.version, claim.version),
            ne(documentChunks.embeddingModel, embedder.model),
          ),
        );
      const stored = await tx
        .select({ index: documentChunks.chunkIndex })
        .from(documentChunks)
        .where(and(eq(documentChunks.documentId, claim.id), eq(documentChunks.version, claim.version)));
      await tx
        .update(documents)
        .set({ chunksTotal: chunks.length, chunksDone: stored.length, lockedAt: new Date() })
        .where(eq(documents.id, claim.id));
      return new Set(stored.map((r) => r.index));
    });
    const todo = chunks.filter((c) => !done.has(c.index));

    for (let i = 0; i < todo.length; i += embedder.maxBatchSize) {
      await nextTurn();
      this.abort.signal.throwIfAborted();
      const batch = todo.slice(i, i + embedder.maxBatchSize);
      const vectors = await embedder.embed(
        batch.map((c) => (c.headingPath.length ? `${c.headingPath.join(' > ')}\n${c.text}` : c.text)),
        { signal: this.abort.signal },
      );
      // Written in small transactions with a turn of the event loop between them: the embedded database runs on the
      // main thread, and back-to-back writes of a large document delayed timers (calls, /health) by 1 to 4 s at a
      // time (see writeBatchRows).
      const writeBatch = this.opts.writeBatchRows ?? 16;
      for (let k = 0; k < batch.length; k += writeBatch) {
        if (k > 0) await nextTurn();
        const rows = batch.slice(k, k + writeBatch);
        const sparse = rows.map((c) => chunkVector(chunkTerms(c.text, c.headingPath)));
        await this.db.transaction(async (tx) => {
          await this.lockOwned(tx, claim);
          const inserted = await tx
            .insert(documentChunks)
            .values(
              rows.map((c, j) => ({
                tenantId: claim.tenant_id,
                documentId: claim.id,
                version: claim.version,
                chunkIndex: c.index,
                content: c.text,
                headingPath: c.headingPath,
                page: c.page ?? null,
                tokenCount: c.tokenCount,
                embedding: Array.from(vectors[k + j]!),
                embeddingModel: embedder.model,
                embeddingDimensions: embedder.dimensions,
                bm25: sparse[j]!.literal,
                termIds: sparse[j]!.termIds,
                extraData: { bm25: BM25_ANALYZER },
              })),
            )
            .onConflictDoNothing()
            .returning({ id: documentChunks.id });
          await tx
            .update(documents)
            .set({ chunksDone: sql`${documents.chunksDone} + ${inserted.length}`, lockedAt: new Date() })
            .where(eq(documents.id, claim.id));
        });
      }
    }

    // The swap: the new version goes live and every other version's chunks go, in one transaction, with the
    // tenant's term statistics moved from the old live version to the new one.
    return this.db.transaction(async (tx) => {
      const live = await this.lockOwned(tx, claim);
      await replaceInTermStats(tx, claim.tenant_id, claim.id, live, claim.version);
      await tx.delete(documentChunks).where(and(eq(documentChunks.documentId, claim.id), ne(documentChunks.version, claim.version)));
      const [{ n } = { n: 0 }] = rowsOf<{ n: number }>(
        await tx.execute(
          sql`select count(*)::int as n from document_chunks where document_id = ${claim.id} and version = ${claim.version}`,
        ),
      );
      const [doc] = await tx
        .update(documents)
        .set({
          status: 'ready',
          liveVersion: claim.version,
          chunkCount: n,
          chunksDone: n,
          embeddingModel: embedder.model,
          embeddingDimensions: embedder.dimensions,
          error: null,
          attempts: 0,
          lockedBy: null,
          lockedAt: null,
          readyAt: new Date(),
        })
        .where(eq(documents.id, claim.id))
        .returning({ title: documents.title, filename: documents.filename });
      // The tenant hears of it in the transaction that makes it live: a version is announced once, when it serves.
      await publishEvent(tx, claim.tenant_id, 'document.ready', {
        document_id: claim.id,
        name: doc!.title,
        chunks: n,
        version: claim.version,
        filename: doc!.filename,
        embedding_model: embedder.model,
      });
      return n;
    });
  }

  /** Row-locks the document and checks it is still this worker's claim on this version. */
  private async lockOwned(tx: Pick<Db, 'execute'>, claim: Claim): Promise<number | null> {
    const rows = rowsOf<{ version: number; locked_by: string | null; live_version: number | null }>(
      await tx.execute(sql`select version, locked_by, live_version from documents where id = ${claim.id} for update`),
    );
    const row = rows[0];
    if (!row || row.version !== claim.version || row.locked_by !== this.workerId) throw new Superseded();
    /** The version serving now. */
    return row.live_version;
  }

  private async fail(claim: Claim, err: unknown, log: FastifyBaseLogger): Promise<void> {
    // Retried: a provider that said so, and errors from outside the document (the database, the network). Never a
    // document's own failure (limits, a killed worker, an unreadable file): it fails the same way every time.
    const transient = err instanceof ProviderError ? err.retryable : !(err instanceof ExtractError || err instanceof GaveUp);
    const message = err instanceof ExtractError ? `${err.code}: ${err.message}` : (err as Error).message;
    const retry = transient && claim.attempts < this.opts.maxAttempts;
    await this.db.transaction(async (tx) => {
      try {
        await this.lockOwned(tx, claim);
      } catch {
        return;
      }
      if (retry) {
        const retryAfter = err instanceof ProviderError ? (err.retryAfterMs ?? 0) : 0;
        const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (claim.attempts - 1)) * (0.8 + Math.random() * 0.4);
        const delayMs = Math.max(retryAfter, backoff);
        log.warn({ err: loggable(err), delayMs }, 'ingestion failed; will retry');
        await tx
          .update(documents)
          .set({
            status: 'pending',
            nextAttemptAt: new Date(Date.now() + delayMs),
            error: `Attempt ${claim.attempts} of ${this.opts.maxAttempts} failed, retrying: ${message}`,
            lockedBy: null,
            lockedAt: null,
          })
          .where(eq(documents.id, claim.id));
        return;
      }
      log.warn({ err: loggable(err) }, 'ingestion failed');
      // A failed replacement keeps the previous version serving; only the unfinished version's chunks go.
      await tx.execute(sql`
        delete from document_chunks c using documents d
        where d.id = c.document_id and c.document_id = ${claim.id} and c.version is distinct from d.live_version`);
      const [doc] = await tx
        .update(documents)
        .set({ status: 'failed', error: message, lockedBy: null, lockedAt: null })
        .where(eq(documents.id, claim.id))
        .returning({ title: documents.title, filename: documents.filename });
      // A retry above is not a failure the tenant hears of: only this final one, with the status it sets.
      await publishEvent(tx, claim.tenant_id, 'document.failed', {
        document_id: claim.id,
        name: doc!.title,
        error: message,
        version: claim.version,
        filename: doc!.filename,
        attempts: claim.attempts,
      });
    });
  }
}

/**
 * An error as plain fields for the log: library errors may carry circular objects (a socket, a parser state) that
 * pino can only print as "[unable to serialize, circular reference]".
 */
export function loggable(err: unknown): { type: string; message: string; code?: string; stack?: string } {
  if (!(err instanceof Error)) return { type: typeof err, message: String(err) };
  const code = (err as { code?: unknown }).code;
  return { type: err.constructor.name, message: err.message, ...(typeof code === 'string' && { code }), stack: err.stack };
}
