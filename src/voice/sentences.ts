// Incremental sentence splitting for streamed LLM text: each sentence goes to TTS as soon as it is complete,
// so the first one is spoken while the model is still writing the rest.

const ABBREVIATIONS = new Set([
  'mr',
  'mrs',
  'ms',
  'dr',
  'st',
  'mt',
  'prof',
  'sr',
  'jr',
  'vs',
  'etc',
  'e.g',
  'i.e',
  'approx',
  'no',
  'tel',
  'ave',
  'inc',
  'ltd',
  'co',
]);

export class SentenceSplitter {
  private buffer = '';

  /** Adds streamed text; returns the sentences it completed. */
  push(text: string): string[] {
    this.buffer += text;
    const out: string[] = [];
    let start = 0;
    for (let i = 0; i < this.buffer.length; i++) {
      const c = this.buffer[i]!;
      const next = this.buffer[i + 1];
      if (c === '\n' && this.buffer.slice(start, i).trim()) {
        out.push(this.buffer.slice(start, i).trim());
        start = i + 1;
        continue;
      }
      if (!'.!?'.includes(c)) continue;
      // Only a boundary when followed by whitespace (so "3.5", "e.g." mid-word and "..." runs wait) ...
      if (next === undefined || !/\s/.test(next)) continue;
      const sentence = this.buffer.slice(start, i + 1);
      // ... and not after a known abbreviation or a single initial ("Dr. Smith", "J. Doe").
      const lastWord = /([\p{L}.]+)\.$/u.exec(sentence)?.[1]?.toLowerCase();
      if (c === '.' && lastWord && (ABBREVIATIONS.has(lastWord) || /^\p{L}$/u.test(lastWord))) continue;
      if (sentence.trim()) out.push(sentence.trim());
      start = i + 1;
    }
    this.buffer = this.buffer.slice(start);
    return out;
  }

  /** What is left when the stream ends. */
  flush(): string | undefined {
    const rest = this.buffer.trim();
    this.buffer = '';
    return rest || undefined;
  }
}
