// Embedder: text -> unit vectors. One interface for the local engine and the OpenAI adapter.
export interface EmbedOptions {
  signal?: AbortSignal;
  onUsage?: (tokens: number) => void;
}

export interface Embedder {
  /** Recorded with every stored vector, so a model change can be detected and re-embedded. */
  readonly model: string;
  readonly dimensions: number;
  /** How many texts one call should carry (the ingestion batches by it). */
  readonly maxBatchSize: number;
  /**
   * True when the vectors only encode shared words (the local embedder): then they add nothing full-text search
   * does not already do better, and hybrid search ranks by full text and uses vectors to break ties and fill gaps.
   */
  readonly lexical?: boolean;
  /** `onUsage`: told the tokens the vendor billed for this request, when it reports them (usage metering). */
  embed(texts: string[], opts?: EmbedOptions): Promise<Float32Array[]>;
}

export function l2normalize(v: Float32Array): Float32Array {
  let sum = 0;
  for (const x of v) sum += x * x;
  const norm = Math.sqrt(sum);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i]! /= norm;
  return v;
}

export function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return na && nb ? dot / Math.sqrt(na * nb) : 0;
}
