// The media process's entry (media-process.ts forks it): plain JavaScript so that any Node starts it; the work itself
// (media-child.ts) is loaded through tsx in development, as the service's threads load theirs.
import process from 'node:process';
import { existsSync } from 'node:fs';
import { URL } from 'node:url';

const compiled = new URL('./media-child.js', import.meta.url);
const { runMediaChild } = existsSync(compiled)
  ? await import(compiled.href)
  : await (await import('tsx/esm/api')).tsImport('./media-child.ts', import.meta.url);

// The service went away (stopped, crashed): its calls are over; nothing here outlives it.
process.on('disconnect', () => process.exit(0));
runMediaChild(process);
process.send({ k: 'ready' });
