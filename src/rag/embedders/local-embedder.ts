// Local embedder: no network, no model download. Signed feature hashing of stemmed words into a fixed-size
// vector, each word in two slots so one collision does not erase it. It captures lexical overlap, not meaning:
// `npm run bench:rag` reports how far that goes, and the OpenAI adapter is there for semantics.
// Measured on the SQuAD slice (hit@5): words only 0.71; adding word pairs 0.66; adding character trigrams 0.31
// (trigrams of common words drown the rare words that identify a passage), so only words are hashed.
import { type Embedder, l2normalize } from './embedder.js';

/** Words too common to tell passages apart (also BM25's, rag/bm25.ts). */
export const STOPWORDS: ReadonlySet<string> = new Set(
  'a an and are as at be by can could did do does for from had has have how i if in into is it its me my of on or our so than that the their them then there these they this to us was we were what when where which who why will with would you your'.split(
    ' ',
  ),
);

export const LOCAL_EMBEDDING_MODEL = 'local-hash-v2';
const SLOTS = ['a:', 'b:'];

/** FNV-1a, 32 bit: fast, stable across platforms and releases (stored vectors depend on it). */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Light suffix stripping so "bookings", "booked" and "booking" meet. */
function stem(w: string): string {
  if (w.length <= 4) return w;
  for (const suffix of ['ing', 'edly', 'ed', 'ies', 'es', 's', 'ly']) {
    if (w.endsWith(suffix) && w.length - suffix.length >= 3) return suffix === 'ies' ? `${w.slice(0, -3)}y` : w.slice(0, -suffix.length);
  }
  return w;
}

export function terms(text: string): string[] {
  const words =
    text
      .toLowerCase()
      .normalize('NFKD')
      .replace(/\p{M}/gu, '')
      .match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.filter((w) => !STOPWORDS.has(w)).map(stem);
}

export class LocalEmbedder implements Embedder {
  /** Change the name whenever the vectors change: stored vectors of an older version are then re-embedded. */
  readonly model = LOCAL_EMBEDDING_MODEL;
  readonly maxBatchSize = 256;
  readonly lexical = true;

  constructor(readonly dimensions = 384) {}

  async embed(texts: string[]): Promise<Float32Array[]> {
    return texts.map((t) => this.embedOne(t));
  }

  embedOne(text: string): Float32Array {
    const counts = new Map<string, number>();
    for (const w of terms(text)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const v = new Float32Array(this.dimensions);
    for (const [word, n] of counts) {
      const weight = 1 + Math.log(n);
      for (const salt of SLOTS) {
        const h = fnv1a(`${salt}${word}`);
        // The top bit picks the sign, so unrelated words colliding in one slot cancel out on average.
        v[h % this.dimensions]! += h & 0x80000000 ? -weight : weight;
      }
    }
    return l2normalize(v);
  }
}
