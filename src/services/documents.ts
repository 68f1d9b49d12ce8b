// The knowledge base's documents: upload (checked cheaply at once), list, read, replace, delete, and re-queueing
// when the tenant changes embedding model. Ingestion itself runs in rag/ingestion.ts, off the request path.
import { and, count, desc, eq, exists, inArray, like, ne, sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { storeParts } from '../db/document-parts.js';
import { documentChunks, documentParts, documents } from '../db/schema.js';
import { AppError, notFound } from '../lib/errors.js';
import { ExtractError, type ExtractLimits, inspectDocument } from '../rag/extract.js';
import { replaceInTermStats } from '../rag/term-stats.js';
import { sha256 } from './secret-box.js';

export type DocumentRow = typeof documents.$inferSelect;

/** One stored passage of a document, with where it is (what a citation's chunk id resolves to). */
export interface KnowledgeChunk {
  chunkId: string;
  documentId: string;
  documentTitle: string;
  version: number;
  /** Its version is the document's live one (searched); otherwise it is being ingested. */
  live: boolean;
  chunkIndex: number;
  headingPath: string[];
  page: number | null;
  text: string;
}

/** A document has stored content: what re-queueing can process again. */
const hasParts = (db: Db) =>
  exists(
    db
      .select({ one: sql`1` })
      .from(documentParts)
      .where(eq(documentParts.documentId, documents.id)),
  );

export interface DocumentUpload {
  title: string;
  filename?: string;
  bytes: Buffer;
}

/** What a (re)queued document starts from: a new version, nothing claimed, nothing done. */
const queued = () => ({
  status: 'pending' as const,
  attempts: 0,
  nextAttemptAt: new Date(),
  lockedBy: null,
  lockedAt: null,
  error: null,
  chunksDone: 0,
  chunksTotal: null,
  version: sql`${documents.version} + 1`,
});

export class DocumentService {
  constructor(
    private readonly db: Db,
    private readonly maxBytes: number,
    private readonly limits: ExtractLimits,
    /** Called when work is queued, so an idle worker in this instance starts at once. */
    private readonly onQueued: () => void = () => {},
  ) {}

  async create(tenantId: string, upload: DocumentUpload): Promise<DocumentRow> {
    const format = await this.validate(upload);
    const row = await this.db.transaction(async (tx) => {
      const [created] = await tx
        .insert(documents)
        .values({
          tenantId,
          title: upload.title,
          filename: upload.filename,
          format,
          sizeBytes: upload.bytes.length,
          contentSha256: sha256(upload.bytes),
        })
        .returning();
      await storeParts(tx, created!.id, upload.bytes);
      return created!;
    });
    this.onQueued();
    return row;
  }

  async list(tenantId: string, page: { limit: number; offset: number }) {
    const where = eq(documents.tenantId, tenantId);
    const [items, [total]] = await Promise.all([
      this.db
        .select()
        .from(documents)
        .where(where)
        .orderBy(desc(documents.createdAt), desc(documents.id))
        .limit(page.limit)
        .offset(page.offset),
      this.db.select({ n: count() }).from(documents).where(where),
    ]);
    return { items, total: total?.n ?? 0 };
  }

  async get(tenantId: string, id: string): Promise<DocumentRow> {
    const [row] = await this.db
      .select()
      .from(documents)
      .where(and(eq(documents.tenantId, tenantId), eq(documents.id, id)));
    if (!row) throw notFound('Document');
    return row;
  }

  /**
   * A chunk of one of the tenant's documents by id: another tenant's chunk is not found, exactly like a missing one.
   * Chunks of a replaced version are deleted once the new one is live, so an old citation may no longer resolve.
   */
  async chunk(tenantId: string, id: string): Promise<KnowledgeChunk> {
    const [row] = await this.db
      .select({
        chunkId: documentChunks.id,
        documentId: documentChunks.documentId,
        documentTitle: documents.title,
        version: documentChunks.version,
        liveVersion: documents.liveVersion,
        chunkIndex: documentChunks.chunkIndex,
        headingPath: documentChunks.headingPath,
        page: documentChunks.page,
        text: documentChunks.content,
      })
      .from(documentChunks)
      .innerJoin(documents, and(eq(documents.id, documentChunks.documentId), eq(documents.tenantId, documentChunks.tenantId)))
      .where(and(eq(documentChunks.tenantId, tenantId), eq(documentChunks.id, id)));
    if (!row) throw notFound('Chunk');
    const { liveVersion, ...chunk } = row;
    return { ...chunk, live: liveVersion === chunk.version };
  }

  /** New content becomes a new version; the current chunks keep answering searches until it is ready. */
  async replace(
    tenantId: string,
    id: string,
    upload: Partial<Pick<DocumentUpload, 'title'>> & Omit<DocumentUpload, 'title'>,
  ): Promise<DocumentRow> {
    const format = await this.validate(upload);
    const row = await this.db.transaction(async (tx) => {
      const [updated] = await tx
        .update(documents)
        .set({
          ...queued(),
          ...(upload.title !== undefined && { title: upload.title }),
          filename: upload.filename ?? null,
          format,
          sizeBytes: upload.bytes.length,
          contentSha256: sha256(upload.bytes),
        })
        .where(and(eq(documents.tenantId, tenantId), eq(documents.id, id)))
        .returning();
      if (!updated) throw notFound('Document');
      await tx.delete(documentParts).where(eq(documentParts.documentId, id));
      await storeParts(tx, id, upload.bytes);
      return updated;
    });
    this.onQueued();
    return row;
  }

  async remove(tenantId: string, id: string): Promise<void> {
    // Chunks go with it (foreign key cascade); a worker busy on it notices at its next write and stops. The row lock
    // comes first, so a version going live meanwhile is either counted and then taken away, or never counted.
    await this.db.transaction(async (tx) => {
      const [doc] = await tx
        .select({ liveVersion: documents.liveVersion })
        .from(documents)
        .where(and(eq(documents.tenantId, tenantId), eq(documents.id, id)))
        .for('update');
      if (!doc) throw notFound('Document');
      await replaceInTermStats(tx, tenantId, id, doc.liveVersion, null);
      await tx.delete(documents).where(and(eq(documents.tenantId, tenantId), eq(documents.id, id)));
    });
  }

  /**
   * Documents whose live chunks were stored before BM25 (no term vector): embedded again, so that full-text search
   * finds them and the term statistics count them (run at start-up, after the upgrade; old chunks serve meanwhile).
   */
  async requeueWithoutTermVectors(): Promise<number> {
    const rows = await this.db
      .update(documents)
      .set(queued())
      .where(
        and(
          ne(documents.status, 'pending'),
          ne(documents.status, 'processing'),
          sql`exists (select 1 from document_chunks c where c.document_id = ${documents.id} and c.version = ${documents.liveVersion} and c.term_ids is null)`,
          hasParts(this.db),
        ),
      )
      .returning({ id: documents.id });
    if (rows.length) this.onQueued();
    return rows.length;
  }

  /** The tenant's embedding model changed: every document is embedded again, serving its old chunks meanwhile. */
  async requeueAll(tenantId: string): Promise<number> {
    const rows = await this.db
      .update(documents)
      .set(queued())
      .where(and(eq(documents.tenantId, tenantId), hasParts(this.db)))
      .returning({ id: documents.id });
    if (rows.length) this.onQueued();
    return rows.length;
  }

  /**
   * Documents embedded by an earlier version of the local embedder: their vectors no longer match the queries
   * the current version embeds, so they are embedded again (run at start-up, after an upgrade).
   */
  /** Every tenant's documents waiting for ingestion or being ingested, by status (the operator metrics). */
  async queueDepth(): Promise<{ status: string; count: number }[]> {
    const rows = await this.db
      .select({ status: documents.status, count: count() })
      .from(documents)
      .where(inArray(documents.status, ['pending', 'processing']))
      .groupBy(documents.status);
    // Both statuses always reported, 0 included, so a dashboard's series does not vanish when the queue is empty.
    return (['pending', 'processing'] as const).map((status) => ({ status, count: rows.find((r) => r.status === status)?.count ?? 0 }));
  }

  async requeueRetiredLocalModels(currentModel: string): Promise<number> {
    const rows = await this.db
      .update(documents)
      .set(queued())
      .where(and(like(documents.embeddingModel, 'local-hash-%'), ne(documents.embeddingModel, currentModel), hasParts(this.db)))
      .returning({ id: documents.id });
    if (rows.length) this.onQueued();
    return rows.length;
  }

  /**
   * Refuses what can be seen cheaply before anything is stored: too large, unknown type, blank text, a DOCX whose
   * ZIP directory is damaged or past the limits. Nothing is extracted here (a hostile file would stall every
   * request and call): what only extraction finds (a password, no text, a limit) makes the document `failed` with
   * its code and reason, in the ingestion worker's threads.
   */
  private async validate(upload: { filename?: string; bytes: Buffer }) {
    if (upload.bytes.length > this.maxBytes) {
      throw new AppError('payload_too_large', `The document is larger than the limit of ${this.maxBytes} bytes`);
    }
    if (upload.bytes.length === 0) throw new AppError('empty_document', 'The document is empty');
    try {
      return inspectDocument(upload.bytes, upload.filename, this.limits);
    } catch (err) {
      if (err instanceof ExtractError) throw new AppError(err.code, err.message);
      throw err;
    }
  }
}
