// Who has the embedded database open: PGlite is one process's, and a second process opening (or dumping, or
// replacing) its folder at the same time would corrupt it or copy it half-written. `<folder>.lock` names the holding
// process; a lock whose process is gone (a crash, a SIGKILL) is stale and taken over.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';

export class DataDirBusyError extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: { pid: number; by: string; since: string },
  ) {
    super(
      `the embedded database in ${dataDir} is open in ${holder.by} (pid ${holder.pid}, since ${holder.since}): ` +
        'stop it first (PGlite is one process’s; a second one would corrupt it)',
    );
  }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/** Takes the folder's lock for this process (`by` names it in a refusal); returns its release. Throws DataDirBusyError. */
export function lockDataDir(dataDir: string, by: string): () => void {
  const file = `${dataDir}.lock`;
  const mine = JSON.stringify({ pid: process.pid, by, since: new Date().toISOString() });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, mine, { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
    }
    let held: { pid: number; by: string; since: string } | undefined;
    try {
      held = JSON.parse(readFileSync(file, 'utf8')) as typeof held;
    } catch {
      // Unreadable or half-written: treated as stale.
    }
    // This process may open its own folder again (a test, a restart in place); another live one may not.
    if (held && held.pid !== process.pid && alive(held.pid)) throw new DataDirBusyError(dataDir, held);
    rmSync(file, { force: true });
  }
  return () => {
    try {
      if (readFileSync(file, 'utf8') === mine) rmSync(file, { force: true });
    } catch {
      // Already gone.
    }
  };
}
