// Speech levels shared by the benchmarks that build test speech (bench:vad, bench:turns): the same trim and the
// same active-speech level, so their recordings are comparable.

/** The level, in dBFS, that test speech's active part is scaled to. */
export const SPEECH_DBFS = -26;
/** The faint noise floor, in dBFS, under test signals. */
export const FLOOR_DBFS = -70;

/** RMS level of 10 ms pieces, in dBFS. */
export function levels(pcm: Int16Array | Float32Array, rate: number): number[] {
  const size = rate / 100;
  const out: number[] = [];
  for (let at = 0; at + size <= pcm.length; at += size) {
    let sum = 0;
    for (let i = at; i < at + size; i++) sum += pcm[i]! * pcm[i]!;
    out.push(10 * Math.log10(sum / size / 32768 ** 2 + 1e-12));
  }
  return out;
}

/**
 * The source from its first to its last piece within 35 dB of its loudest (and above -60 dBFS), with 5 ms fades,
 * scaled so its active speech sits at SPEECH_DBFS: the label then covers voice, not the recording's own silence.
 */
export function trimAndLevel(pcm: Int16Array, rate: number): Float32Array {
  const l = levels(pcm, rate);
  const threshold = Math.max(Math.max(...l) - 35, -60);
  const first = l.findIndex((x) => x > threshold);
  const last = l.length - 1 - [...l].reverse().findIndex((x) => x > threshold);
  const size = rate / 100;
  const voiced = pcm.subarray(first * size, (last + 1) * size);
  const active = l.slice(first, last + 1).filter((x) => x > threshold);
  const activeDb = 10 * Math.log10(active.reduce((s, x) => s + 10 ** (x / 10), 0) / active.length);
  const gain = 10 ** ((SPEECH_DBFS - activeDb) / 20);
  const fade = rate / 200;
  return Float32Array.from(voiced, (s, i) => s * gain * Math.min(1, i / fade, (voiced.length - 1 - i) / fade));
}
