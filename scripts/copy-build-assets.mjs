// After tsc (`npm run build`): copies into dist/ what tsc does not emit: the worker threads' plain .mjs entry files
// and the SQL migrations (read at start-up from next to db/client.js).
import { cpSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const copy = (dir) => {
  for (const name of readdirSync(path.join('src', dir))) {
    const rel = path.join(dir, name);
    if (statSync(path.join('src', rel)).isDirectory()) copy(rel);
    else if (name.endsWith('.mjs')) cpSync(path.join('src', rel), path.join('dist', rel));
  }
};
copy('');
cpSync('src/db/migrations', 'dist/db/migrations', { recursive: true });
