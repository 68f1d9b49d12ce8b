// Which test files the wire pass (TEST_DB=wire) runs: those whose database the switch changes, that is those that
// get their test apps from test/helpers.ts or read TEST_DB themselves. Every other file (pure units, processes given
// their own data folder) would run exactly as in the embedded pass, so it runs once. buildTestApp checks, in the
// embedded pass, that the file calling it is selected here, so a new way of getting a test app cannot drop a file
// from the wire pass unnoticed.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

export const runsInWirePass = (source: string): boolean => /\b(buildTestApp|useTestApp|TEST_DB)\b/.test(source);

/** The test files under `dirs` the wire pass runs. */
export function wirePassFiles(dirs: string[]): string[] {
  const files = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const p = path.join(dir, e.name);
      return e.isDirectory() ? files(p) : e.name.endsWith('.test.ts') ? [p] : [];
    });
  return dirs
    .flatMap(files)
    .filter((f) => runsInWirePass(readFileSync(f, 'utf8')))
    .sort();
}
