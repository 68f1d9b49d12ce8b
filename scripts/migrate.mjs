// `npm run migrate`: runs src/migrate.ts (through tsx, no build needed) while developing, and the compiled
// dist/migrate.js in production (NODE_ENV=production) or wherever tsx is not installed (the container image).
/* global process, console */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

let tsx = true;
try {
  createRequire(import.meta.url).resolve('tsx/package.json');
} catch {
  tsx = false;
}
const compiled = process.env.NODE_ENV === 'production' || !tsx;
if (compiled && !existsSync('dist/migrate.js')) {
  console.error('migrate: dist/migrate.js not found; run `npm run build` first');
  process.exit(1);
}
const args = compiled ? ['--enable-source-maps', 'dist/migrate.js'] : ['--import', 'tsx', 'src/migrate.ts'];
const run = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(run.status ?? 1);
