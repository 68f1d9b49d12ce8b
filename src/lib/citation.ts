// A citation: where an agent's answer came from, readable without another request (document, title, heading path,
// page, a short snippet) and resolvable in full by its chunk id (GET /api/v1/knowledge/chunks/{id}). The one schema
// for it: chat replies (HTTP and websocket), transcript turns (stored and read), the `transcript.turn` webhook.
//
// Stored whole in the turn (a snapshot, bounded by SNIPPET_MAX_CHARS), not as a bare id resolved on read: replacing
// a document deletes its old version's chunks, and a transcript must still say what the agent was shown then.
import { z } from 'zod';

/** A snippet is a pointer into the passage, not the passage: at most this many characters. */
export const SNIPPET_MAX_CHARS = 200;

export const citationSchema = z
  .object({
    chunk_id: z.uuid().describe('The knowledge chunk: GET /api/v1/knowledge/chunks/{id} gives its whole text while it is live.'),
    document_id: z.uuid(),
    title: z.string().describe('The document’s title when the answer was given.'),
    heading_path: z.array(z.string()).describe('Headings above the passage, outermost first.'),
    page: z.number().int().nullable().describe('The page the passage starts on (PDF), else null.'),
    snippet: z.string().max(SNIPPET_MAX_CHARS).describe(`The passage’s beginning, at most ${SNIPPET_MAX_CHARS} characters.`),
  })
  .meta({ id: 'Citation' });

export type Citation = z.infer<typeof citationSchema>;

/** A turn's citation as stored: turns written before citations were stored whole hold the chunk id alone. */
export type StoredCitation = Citation | string;

/** What a retrieved passage carries (the retriever's hit, the agent's knowledge passage). */
export interface CitedPassage {
  chunkId: string;
  documentId: string;
  documentTitle: string;
  headingPath: string[];
  page: number | null;
  text: string;
}

export function citationOf(p: CitedPassage): Citation {
  return {
    chunk_id: p.chunkId,
    document_id: p.documentId,
    title: p.documentTitle,
    heading_path: p.headingPath,
    page: p.page,
    snippet: snippetOf(p.text),
  };
}

/** The text's beginning, whitespace collapsed, cut at a word boundary with an ellipsis past `max` characters. */
export function snippetOf(text: string, max = SNIPPET_MAX_CHARS): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  if (flat.length <= max) return flat;
  const cut = flat.slice(0, max);
  const space = cut.lastIndexOf(' ');
  // A word boundary in the last quarter; otherwise (one very long word) a hard cut, never inside a surrogate pair.
  let kept = space > max * 0.75 ? cut.slice(0, space) : cut.slice(0, max - 1);
  if (/[\uD800-\uDBFF]$/.test(kept)) kept = kept.slice(0, -1);
  return `${kept.trimEnd()}…`;
}
