// Local embedder: no network, no model download. Signed feature hashing of words, word pairs and character
// trigrams into a fixed-size vector. It captures lexical overlap (including word variants through trigrams),
// not meaning: the RAG benchmark reports how far that goes, and the OpenAI adapter is there for semantics.
import { type Embedder, l2normalize } from './embedder.js';

const STOPWORDS = new Set(
  'a an and are as at be by can could did do does for from had has have how i if in into is it its me my of on or our so than that the their them then there these they this to us was we were what when where which who why will with would you your'.split(
    ' ',
  ),
);

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
  const words = text.toLowerCase().normalize('NFKD').replace(/\p{M}/gu, '').match(/[\p{L}\p{N}]+/gu) ?? [];
  return words.filter((w) => !STOPWORDS.has(w)).map(stem);
}

export class LocalEmbedder implements Embedder {
  readonly model = 'local-hash-v1';
  readonly maxBatchSize = 256;

  constructor(readonly dimensions = 384) {}

  async embed(texts: string[]): Promise<Float32Array[]> {
    return texts.map((t) => this.embedOne(t));
  }

  embedOne(text: string): Float32Array {
    const counts = new Map<string, number>();
    const add = (feature: string, weight: number) => counts.set(feature, (counts.get(feature) ?? 0) + weight);
    const ws = terms(text);
    for (let i = 0; i < ws.length; i++) {
      const w = ws[i]!;
      add(`w:${w}`, 1);
      if (i + 1 < ws.length) add(`b:${w} ${ws[i + 1]}`, 0.5);
      const padded = `^${w}$`;
      for (let j = 0; j + 3 <= padded.length; j++) add(`c:${padded.slice(j, j + 3)}`, 0.25);
    }
    const v = new Float32Array(this.dimensions);
    for (const [feature, weight] of counts) {
      const h = fnv1a(feature);
      // The top bit picks the sign, so unrelated features colliding in one slot cancel out on average.
      const sign = h & 0x80000000 ? -1 : 1;
      v[h % this.dimensions]! += sign * (1 + Math.log(weight));
    }
    return l2normalize(v);
  }
}
