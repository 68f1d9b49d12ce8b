// Migration 0011 (documents' files in parts): a database upgraded from 0009 keeps every stored file, now as parts,
// and ingestion reads it back byte for byte.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { describe, expect, it } from 'vitest';
import { type Db, PGLITE_EXTENSIONS } from '../src/db/client.js';
import { readParts } from '../src/db/document-parts.js';
import * as schema from '../src/db/schema.js';

const folder = path.join(import.meta.dirname, '../src/db/migrations');
const journal = JSON.parse(readFileSync(path.join(folder, 'meta/_journal.json'), 'utf8')) as { entries: { tag: string }[] };
const apply = async (db: PGlite, tag: string) => {
  for (const statement of readFileSync(path.join(folder, `${tag}.sql`), 'utf8').split('--> statement-breakpoint')) await db.exec(statement);
};

describe('migration 0011_document_parts', () => {
  it('moves each stored file into document_parts and drops documents.source', async () => {
    const pg = await PGlite.create({ dataDir: 'memory://', extensions: PGLITE_EXTENSIONS });
    try {
      const tags = journal.entries.map((e) => e.tag);
      const at = tags.indexOf('0011_document_parts');
      expect(at).toBeGreaterThan(0);
      for (const tag of tags.slice(0, at)) await apply(pg, tag);
      const file = Buffer.from('a file stored before the upgrade\n'.repeat(1_000));
      const { rows } = await pg.query<{ id: string }>(
        `with t as (insert into tenants (name) values ('T') returning id)
         insert into documents (tenant_id, title, source, size_bytes) select id, 'old', $1, $2 from t returning id`,
        [file, file.length],
      );
      await pg.query(`insert into documents (tenant_id, title) select tenant_id, 'no file' from documents`);
      await apply(pg, '0011_document_parts');

      const { rows: columns } = await pg.query(
        `select 1 from information_schema.columns where table_name = 'documents' and column_name = 'source'`,
      );
      expect(columns).toHaveLength(0);
      expect((await pg.query(`select count(*)::int as n from document_parts`)).rows).toEqual([{ n: 1 }]);
      const db = drizzle({ client: pg, schema }) as unknown as Db;
      expect(Buffer.compare(await readParts(db, rows[0]!.id), file)).toBe(0);
    } finally {
      await pg.close();
    }
  });
});
