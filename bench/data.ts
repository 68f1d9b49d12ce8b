// Where the benchmarks' data sets are: shipped in bench/data/ (licences and attribution in its README), so the
// benchmarks run from a fresh clone; resolved from this file, not from the working directory.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const BENCH_DATA_DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'data');
/** One SQuAD v1.1 article (University of Notre Dame: 55 passages, 269 questions), CC BY-SA 4.0. */
export const SQUAD_FILE = path.join(BENCH_DATA_DIR, 'squad-notre-dame.json');
/** 100 Free Spoken Digit Dataset recordings (8 kHz mono WAV), CC BY-SA 4.0. */
export const FSDD_DIR = path.join(BENCH_DATA_DIR, 'fsdd');

/**
 * Progress on stderr for a loop of `total` steps: a line at each tenth (and at the end), so a long benchmark shows
 * it is moving without flooding a terminal or a CI log.
 */
export function progress(label: string, total: number, log: (line: string) => void = (l) => console.error(l)): { tick(): void } {
  let done = 0;
  let shown = 0;
  return {
    tick() {
      done++;
      const tenth = Math.floor((done * 10) / Math.max(1, total));
      if (tenth > shown || done === total) {
        shown = tenth;
        log(`${label} ${done}/${total}`);
      }
    },
  };
}
