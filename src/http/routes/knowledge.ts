// /api/v1/knowledge: search (what the agent would find in the caller's knowledge base, with where it came from) and
// one chunk by id (what a citation's chunk_id resolves to).
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { App } from '../context.js';
import { principalOf } from '../auth.js';
import { errorEnvelope, errorResponses, idParams } from '../schemas.js';

const hitView = z.object({
  chunk_id: z.uuid(),
  document_id: z.uuid(),
  document_title: z.string(),
  score: z.number(),
  text: z.string(),
  heading_path: z.array(z.string()),
  page: z.number().int().nullable(),
});

const chunkView = z.object({
  chunk_id: z.uuid(),
  document_id: z.uuid(),
  title: z.string(),
  heading_path: z.array(z.string()),
  page: z.number().int().nullable(),
  text: z.string(),
  chunk_index: z.number().int(),
  version: z.number().int(),
  live: z.boolean().describe('Its version is the document’s live one (searched); false while a new version is ingested.'),
});

export function knowledgeRoutes(app: App, deps: Deps): void {
  app.get(
    '/api/v1/knowledge/chunks/:id',
    {
      config: { auth: 'tenant' },
      schema: {
        tags: ['knowledge'],
        security: [{ bearer: [] }],
        summary: 'One passage of the tenant’s documents: what a citation’s chunk_id resolves to',
        description: 'A replaced document’s old chunks are deleted once its new version is live: their citations keep their snippet.',
        params: idParams,
        response: { 200: chunkView, ...errorResponses },
      },
    },
    async (request) => {
      const c = await deps.documents.chunk(principalOf(request).tenantId, request.params.id);
      return {
        chunk_id: c.chunkId,
        document_id: c.documentId,
        title: c.documentTitle,
        heading_path: c.headingPath,
        page: c.page,
        text: c.text,
        chunk_index: c.chunkIndex,
        version: c.version,
        live: c.live,
      };
    },
  );

  app.post(
    '/api/v1/knowledge/search',
    {
      config: { auth: 'tenant' },
      schema: {
        tags: ['knowledge'],
        security: [{ bearer: [] }],
        summary:
          'Search the tenant’s documents (hybrid: vectors + BM25 full text); top_k, min_relevance and min_score default to the RAG settings',
        description:
          'Nothing is returned when no passage reaches `min_relevance` (the answerability gate). `score` is that relevance (0..1: the BM25 weight of the question’s words the passage carries); `min_score` (deprecated) is a cosine floor for results that match no word of the question.',
        body: z.strictObject({
          query: z.string().trim().min(1).max(2000),
          top_k: z.number().int().min(1).max(50).optional(),
          min_score: z.number().min(0).max(1).optional(),
          min_relevance: z.number().min(0).max(1).optional(),
          mode: z.enum(['hybrid', 'vector', 'fulltext']).default('hybrid'),
        }),
        response: { 200: z.object({ results: z.array(hitView) }), 502: errorEnvelope, ...errorResponses },
      },
    },
    async (request) => {
      const { tenantId } = principalOf(request);
      const { rag } = await deps.settings.getTenant(tenantId);
      const b = request.body;
      const hits = await deps.retriever.search(tenantId, b.query, {
        topK: b.top_k ?? rag.top_k,
        minScore: b.min_score ?? rag.min_score,
        minRelevance: b.min_relevance ?? rag.min_relevance,
        mode: b.mode,
      });
      return {
        results: hits.map((h) => ({
          chunk_id: h.chunkId,
          document_id: h.documentId,
          document_title: h.documentTitle,
          score: Math.round(h.score * 1e4) / 1e4,
          text: h.text,
          heading_path: h.headingPath,
          page: h.page,
        })),
      };
    },
  );
}
