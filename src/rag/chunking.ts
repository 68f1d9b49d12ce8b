// Structure-aware chunking: headings, then paragraphs, then sentences, packed within a token budget with
// overlap. Each chunk keeps its heading path and page so answers can cite where they came from: a chunk never
// straddles two sections nor two pages.

/** A piece of extracted text in reading order. Extractors (text, Markdown, HTML, PDF, DOCX) produce these. */
export type Block = { kind: 'heading'; level: number; text: string; page?: number } | { kind: 'paragraph'; text: string; page?: number };

export interface Chunk {
  index: number;
  text: string;
  /** Headings above the chunk, outermost first. */
  headingPath: string[];
  /** First page the chunk's text comes from, when the source has pages. */
  page?: number;
  tokenCount: number;
}

export interface ChunkOptions {
  /** Upper bound per chunk, in estimated tokens. */
  maxTokens: number;
  /** Tokens of the previous chunk's tail repeated at the start of the next one within a section. */
  overlapTokens: number;
}

export const DEFAULT_CHUNK_OPTIONS: ChunkOptions = { maxTokens: 300, overlapTokens: 40 };

/**
 * Token estimate without a tokenizer download: words and punctuation runs, which tracks BPE counts of
 * English prose within ~20%. Only used for budgets, never for billing.
 */
export function estimateTokens(text: string): number {
  const pieces = text.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu);
  if (!pieces) return 0;
  let n = 0;
  // Long words split into several BPE tokens.
  for (const p of pieces) n += Math.max(1, Math.ceil(p.length / 6));
  return n;
}

const SENTENCE_END = /(?<=[.!?…。！？])\s+(?=[\p{Lu}\p{N}"'“([])/u;

export function splitSentences(text: string): string[] {
  return text
    .split(SENTENCE_END)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Splits a unit longer than the budget by words, as a last resort (a sentence longer than a chunk). */
function splitByWords(text: string, maxTokens: number): string[] {
  const words = text.split(/\s+/).filter(Boolean);
  const out: string[] = [];
  let cur: string[] = [];
  let tokens = 0;
  for (const w of words) {
    const t = estimateTokens(w);
    if (tokens + t > maxTokens && cur.length) {
      out.push(cur.join(' '));
      cur = [];
      tokens = 0;
    }
    cur.push(w);
    tokens += t;
  }
  if (cur.length) out.push(cur.join(' '));
  return out;
}

interface Unit {
  text: string;
  tokens: number;
  page?: number;
  /** True for the first unit of a paragraph: joined with a blank line instead of a space. */
  paragraphStart: boolean;
}

export function chunkBlocks(blocks: Block[], options: ChunkOptions = DEFAULT_CHUNK_OPTIONS): Chunk[] {
  if (options.maxTokens < 16) throw new Error('maxTokens must be at least 16');
  if (options.overlapTokens < 0 || options.overlapTokens >= options.maxTokens / 2) {
    throw new Error('overlapTokens must be between 0 and half of maxTokens');
  }
  const chunks: Chunk[] = [];
  const headings: { level: number; text: string }[] = [];
  let section: Unit[] = [];

  const flushSection = () => {
    if (section.length === 0) return;
    const headingPath = headings.map((h) => h.text);
    for (const packed of pack(section, options)) {
      chunks.push({ index: chunks.length, headingPath, ...packed });
    }
    section = [];
  };

  for (const block of blocks) {
    const text = block.text.replace(/\s+/g, ' ').trim();
    if (!text) continue;
    if (block.kind === 'heading') {
      // A new heading closes the section: chunks never straddle two sections.
      flushSection();
      while (headings.length && headings[headings.length - 1]!.level >= block.level) headings.pop();
      headings.push({ level: block.level, text });
      continue;
    }
    // A new page closes the section's chunk too (the heading path goes on): a chunk's page is where all of it is.
    if (section.length && block.page !== section[section.length - 1]!.page) flushSection();
    const paragraphTokens = estimateTokens(text);
    const pieces =
      paragraphTokens <= options.maxTokens
        ? [text]
        : splitSentences(text).flatMap((s) => (estimateTokens(s) <= options.maxTokens ? [s] : splitByWords(s, options.maxTokens)));
    pieces.forEach((p, i) => section.push({ text: p, tokens: estimateTokens(p), page: block.page, paragraphStart: i === 0 }));
  }
  flushSection();
  return chunks;
}

/** Greedy packing of units into chunks within the budget; the next chunk starts with the tail of the last. */
function pack(units: Unit[], { maxTokens, overlapTokens }: ChunkOptions): Omit<Chunk, 'index' | 'headingPath'>[] {
  const out: Omit<Chunk, 'index' | 'headingPath'>[] = [];
  let cur: Unit[] = [];
  let tokens = 0;
  const emit = () => {
    const text = cur.map((u, i) => (i === 0 ? u.text : (u.paragraphStart ? '\n\n' : ' ') + u.text)).join('');
    out.push({ text, page: cur.find((u) => u.page !== undefined)?.page, tokenCount: tokens });
  };
  for (const unit of units) {
    if (tokens + unit.tokens > maxTokens && cur.length) {
      emit();
      // Carry whole trailing units (never half a sentence) up to the overlap budget.
      const carried: Unit[] = [];
      let carriedTokens = 0;
      for (let i = cur.length - 1; i >= 0; i--) {
        const u = cur[i]!;
        if (carriedTokens + u.tokens > overlapTokens || carriedTokens + u.tokens + unit.tokens > maxTokens) break;
        carried.unshift(u);
        carriedTokens += u.tokens;
      }
      cur = carried;
      tokens = carriedTokens;
    }
    cur.push(unit);
    tokens += unit.tokens;
  }
  if (cur.length) emit();
  return out;
}
