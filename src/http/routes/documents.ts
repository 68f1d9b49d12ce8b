// /api/v1/documents: the tenant's knowledge base. Uploads are multipart (`file`, optional `title`) or JSON
// ({title, content}); they are checked at once and ingested in the background (rag/ingestion.ts).
import fastifyMultipart from '@fastify/multipart';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { DocumentRow, DocumentUpload } from '../../services/documents.js';
import type { App } from '../context.js';
import { principalOf } from '../auth.js';
import { unsafeTextReason } from '../../lib/safe-input.js';
import { AppError, validationError } from '../../lib/errors.js';
import { errorEnvelope, errorResponses, idParams, iso, page, pageQuery } from '../schemas.js';

const documentView = z.object({
  id: z.uuid(),
  title: z.string(),
  filename: z.string().nullable(),
  format: z.enum(['text', 'markdown', 'html', 'pdf', 'docx']),
  size_bytes: z.number().int(),
  content_sha256: z.string().nullable(),
  status: z.enum(['pending', 'processing', 'ready', 'failed']),
  error: z.string().nullable(),
  /** Chunks answering searches now (those of live_version). */
  chunk_count: z.number().int(),
  version: z.number().int(),
  live_version: z.number().int().nullable(),
  progress: z.object({ chunks_done: z.number().int(), chunks_total: z.number().int().nullable() }),
  attempts: z.number().int(),
  embedding_model: z.string().nullable(),
  embedding_dimensions: z.number().int().nullable(),
  created_at: z.string(),
  updated_at: z.string(),
  ready_at: z.string().nullable(),
});

const toView = (d: DocumentRow): z.infer<typeof documentView> => ({
  id: d.id,
  title: d.title,
  filename: d.filename,
  format: d.format,
  size_bytes: d.sizeBytes,
  content_sha256: d.contentSha256,
  status: d.status,
  error: d.error,
  chunk_count: d.chunkCount,
  version: d.version,
  live_version: d.liveVersion,
  progress: { chunks_done: d.chunksDone, chunks_total: d.chunksTotal },
  attempts: d.attempts,
  embedding_model: d.embeddingModel,
  embedding_dimensions: d.embeddingDimensions,
  created_at: d.createdAt.toISOString(),
  updated_at: d.updatedAt.toISOString(),
  ready_at: iso(d.readyAt),
});

const title = z.string().trim().min(1).max(300);
const jsonUpload = z.strictObject({ title, content: z.string().min(1, 'must not be empty') });
const jsonReplace = z.strictObject({ title: title.optional(), content: z.string().min(1, 'must not be empty') });

const uploadDescription =
  'Send `multipart/form-data` with a `file` part (plain text, Markdown, HTML, PDF or DOCX; the type is read from ' +
  'the content) and an optional `title` field, or JSON `{"title": "...", "content": "..."}`. Answers 202: the ' +
  'document is ingested in the background; poll it until `status` is `ready` (or `failed`, with `error`).';

export async function documentRoutes(app: App, deps: Deps): Promise<void> {
  const common = { tags: ['knowledge'], security: [{ bearer: [] }] };
  const maxBytes = deps.config.documentMaxBytes;
  // Multipart only on these routes; the rest of the API stays JSON-only.
  await app.register(fastifyMultipart, { limits: { fileSize: maxBytes, files: 1, fields: 4, parts: 5, fieldSize: 4096 } });
  // JSON uploads carry the document inline; escaping can double it.
  const bodyLimit = Math.max(deps.config.bodyLimitBytes, maxBytes * 2 + 65_536);

  app.post(
    '/api/v1/documents',
    {
      bodyLimit,
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Upload a document to the knowledge base',
        description: uploadDescription,
        response: { 202: documentView, 413: errorEnvelope, 415: errorEnvelope, ...errorResponses },
      },
    },
    async (request, reply) => {
      const upload = await readUpload(request, false);
      const doc = await deps.documents.create(principalOf(request).tenantId, {
        ...upload,
        title: upload.title ?? upload.filename ?? 'Untitled',
      });
      return reply.status(202).send(toView(doc));
    },
  );

  app.get(
    '/api/v1/documents',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'List documents, newest first',
        querystring: pageQuery,
        response: { 200: page(documentView), ...errorResponses },
      },
    },
    async (request) => {
      const { items, total } = await deps.documents.list(principalOf(request).tenantId, request.query);
      return { items: items.map(toView), total, ...request.query };
    },
  );

  app.get(
    '/api/v1/documents/:id',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'One document: status, progress, error',
        params: idParams,
        response: { 200: documentView, ...errorResponses },
      },
    },
    async (request) => toView(await deps.documents.get(principalOf(request).tenantId, request.params.id)),
  );

  app.put(
    '/api/v1/documents/:id',
    {
      bodyLimit,
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Replace a document’s content; the current version keeps answering until the new one is ready',
        description: uploadDescription.replace('"title": "...", ', '"title"?: "...", '),
        params: idParams,
        response: { 202: documentView, 413: errorEnvelope, 415: errorEnvelope, ...errorResponses },
      },
    },
    async (request, reply) => {
      const upload = await readUpload(request, true);
      const doc = await deps.documents.replace(principalOf(request).tenantId, request.params.id, upload);
      return reply.status(202).send(toView(doc));
    },
  );

  app.delete(
    '/api/v1/documents/:id',
    {
      config: { auth: 'tenant_write' },
      schema: { ...common, summary: 'Delete a document and its chunks', params: idParams, response: { 204: z.null(), ...errorResponses } },
    },
    async (request, reply) => {
      await deps.documents.remove(principalOf(request).tenantId, request.params.id);
      return reply.status(204).send(null);
    },
  );
}

/** The upload from either body kind; the file's bytes are read in full (bounded by the size limit). */
async function readUpload(request: FastifyRequest, titleOptional: boolean): Promise<Omit<DocumentUpload, 'title'> & { title?: string }> {
  if (!request.isMultipart()) {
    if (request.body === undefined || request.body === null) {
      throw new AppError('unsupported_media_type', 'Send multipart/form-data with a file, or JSON {title, content}');
    }
    const parsed = (titleOptional ? jsonReplace : jsonUpload).safeParse(request.body);
    if (!parsed.success) throw validationError(parsed.error);
    return { title: parsed.data.title, bytes: Buffer.from(parsed.data.content, 'utf8') };
  }
  let bytes: Buffer | undefined;
  let filename: string | undefined;
  let titleField: string | undefined;
  try {
    for await (const part of request.parts()) {
      if (part.type === 'file') {
        if (part.fieldname !== 'file') throw fieldError(`body.${part.fieldname}`, 'unknown file field; send the document as `file`');
        bytes = await part.toBuffer();
        // Multipart is parsed here, past the app's input check: the same rule for its text (lib/safe-input.ts).
        const unsafe = part.filename ? unsafeTextReason(part.filename) : undefined;
        if (unsafe) throw fieldError('body.file.filename', unsafe);
        // Cut by code points, so a cut never leaves half a surrogate pair.
        filename = part.filename ? [...part.filename].slice(0, 300).join('') : undefined;
      } else if (part.fieldname === 'title') {
        titleField = String(part.value);
        const unsafe = unsafeTextReason(titleField);
        if (unsafe) throw fieldError('body.title', unsafe);
      } else {
        throw fieldError(`body.${part.fieldname}`, 'unknown field');
      }
    }
  } catch (err) {
    // The multipart plugin's own errors carry a status (413 for size limits); the parser's do not.
    if (err instanceof AppError || (err as { statusCode?: number }).statusCode) throw err;
    throw new AppError('bad_request', `The multipart body is malformed (${(err as Error).message})`);
  }
  if (!bytes) throw fieldError('body.file', 'is required');
  let docTitle: string | undefined;
  if (titleField !== undefined) {
    const t = title.safeParse(titleField);
    if (!t.success) throw validationError(t.error, 'body.title');
    docTitle = t.data;
  }
  return { title: docTitle, filename, bytes };
}

const fieldError = (field: string, message: string) => new AppError('validation_error', `${field}: ${message}`, [{ field, message }]);
