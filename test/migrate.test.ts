// Migrations as a release step: `npm run migrate` applies them and exits; with MIGRATE_ON_START=false the service
// applies none and refuses to start, in one line, until the schema is current.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { openDatabase, SchemaNotCurrentError } from '../src/db/client.js';

const env = (dataDir: string, extra: Record<string, string> = {}) => ({
  PATH: process.env.PATH ?? '',
  DATA_DIR: dataDir,
  LOG_LEVEL: 'warn',
  ...extra,
});

describe('migrations as a release step', () => {
  // Two processes and a first boot of the embedded database: tens of seconds beside other test files.
  it('MIGRATE_ON_START=false refuses a database with pending migrations; npm run migrate applies them; then it opens', async () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'va-migrate-'));
    // The service itself: exit 1 and one line naming the command, no stack trace.
    const main = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: env(dataDir, { MIGRATE_ON_START: 'false', PORT: '0' }),
      encoding: 'utf8',
    });
    expect(main.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(/^The database schema is not current: \d+ migration\(s\) pending \(0000_extensions .*npm run migrate/),
    ]);
    expect(main.status).toBe(1);

    const pglite = path.join(dataDir, 'pglite');
    const err = await openDatabase({ dataDir: pglite, poolMax: 1, migrate: false }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SchemaNotCurrentError);

    const migrate = spawnSync(process.execPath, ['scripts/migrate.mjs'], { env: env(dataDir), encoding: 'utf8' });
    expect(migrate.stderr).toBe('');
    expect(migrate.stdout).toContain('is current');
    expect(migrate.status).toBe(0);

    const db = await openDatabase({ dataDir: pglite, poolMax: 1, migrate: false });
    await db.close();
  }, 180_000);
});
