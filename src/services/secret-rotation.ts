// What a SECRET_KEY rotation needs besides the key ring itself: re-sealing every stored secret under the newest key
// (`npm run secrets:rotate`), and the start-up check that the ring opens what is stored (a SECRET_KEY changed without
// its predecessor in SECRET_KEY_PREVIOUS would make every provider key and signing secret unreadable).
//
// Where sealed values live: tenant_configs' JSON columns (provider keys, tool header values: any string in them
// that one of the ring's keys opens; AES-GCM authenticates, so nothing else is taken for a sealed value),
// signing_secrets and webhook_endpoints (secret, previous_secret).
import { sql } from 'drizzle-orm';
import { type Db, rowsOf } from '../db/client.js';
import type { SecretBox } from './secret-box.js';

export interface RotationReport {
  /** Sealed values found. */
  sealed: number;
  /** Re-sealed under the newest key (they were sealed under a previous one). */
  resealed: number;
  /** Sealed values no key of the ring opens (left as they are). */
  unreadable: number;
  /** Rows written. */
  rowsUpdated: number;
}

/** AES-256-GCM as SecretBox seals it: v1.<12-byte iv>.<16-byte tag>.<ciphertext>, base64url. */
const SEALED = /^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]*$/;

/** The JSON columns of tenant_configs that may hold sealed values. */
const SETTINGS_COLUMNS = ['provider_keys', 'tools', 'providers', 'call', 'rag', 'analysis'] as const;

/** The tables with sealed text columns: table -> columns. */
const SEALED_COLUMNS = {
  signing_secrets: ['secret', 'previous_secret'],
  webhook_endpoints: ['secret', 'previous_secret'],
} as const;

class Counter {
  readonly report: RotationReport = { sealed: 0, resealed: 0, unreadable: 0, rowsUpdated: 0 };
  constructor(private readonly box: SecretBox) {}

  /** The value re-sealed under the newest key if a previous one sealed it; else the value as it is. */
  reseal(value: string): string {
    if (!SEALED.test(value)) return value;
    const opened = this.box.openWith(value);
    if (!opened) {
      // A string shaped like a sealed value that no key opens: sealed under a key no longer in the ring.
      this.report.sealed++;
      this.report.unreadable++;
      return value;
    }
    this.report.sealed++;
    if (opened.keyIndex === 0) return value;
    this.report.resealed++;
    return this.box.seal(opened.plain);
  }

  /** A JSON value with every sealed string in it re-sealed (the same object when nothing changed). */
  resealJson(value: unknown): unknown {
    if (typeof value === 'string') return this.reseal(value);
    if (Array.isArray(value)) {
      const out = value.map((v) => this.resealJson(v));
      return out.some((v, i) => v !== value[i]) ? out : value;
    }
    if (value && typeof value === 'object') {
      const entries = Object.entries(value);
      const out = entries.map(([k, v]) => [k, this.resealJson(v)] as const);
      return out.some(([, v], i) => v !== entries[i]![1]) ? Object.fromEntries(out) : value;
    }
    return value;
  }
}

/**
 * Re-seals every stored sealed value that a previous key of the ring sealed, under the newest. Idempotent (a second
 * run re-seals nothing), in batches of `batchSize` rows, each batch one transaction with its rows locked (a settings
 * change at the same moment waits, then applies to the re-sealed row). Safe while the service runs on PostgreSQL.
 */
export async function resealStoredSecrets(
  db: Db,
  box: SecretBox,
  opts: { batchSize?: number; onBatch?: (table: string, report: RotationReport) => void } = {},
): Promise<RotationReport> {
  const counter = new Counter(box);
  const batchSize = opts.batchSize ?? 200;
  const tables: [string, readonly string[], (row: Record<string, unknown>) => Record<string, unknown>][] = [
    ['tenant_configs', SETTINGS_COLUMNS, (row) => Object.fromEntries(SETTINGS_COLUMNS.map((c) => [c, counter.resealJson(row[c])]))],
    ...Object.entries(SEALED_COLUMNS).map(
      ([table, columns]) =>
        [
          table,
          columns,
          (row: Record<string, unknown>) =>
            Object.fromEntries(columns.map((c) => [c, typeof row[c] === 'string' ? counter.reseal(row[c]) : row[c]])),
        ] as [string, readonly string[], (row: Record<string, unknown>) => Record<string, unknown>],
    ),
  ];
  for (const [table, columns, reseal] of tables) {
    // Keyset pagination on the primary key: each batch is its own short transaction.
    let after = '00000000-0000-0000-0000-000000000000';
    for (;;) {
      const last = await db.transaction(async (tx) => {
        const rows = rowsOf<Record<string, unknown> & { id: string }>(
          await tx.execute(
            sql`select id, ${sql.join(
              columns.map((c) => sql.identifier(c)),
              sql`, `,
            )} from ${sql.identifier(table)} where id > ${after} order by id limit ${batchSize} for update`,
          ),
        );
        for (const row of rows) {
          const next = reseal(row);
          const changed = columns.filter((c) => next[c] !== row[c]);
          if (!changed.length) continue;
          const json = table === 'tenant_configs';
          await tx.execute(
            sql`update ${sql.identifier(table)} set ${sql.join(
              changed.map((c) => sql`${sql.identifier(c)} = ${json ? sql`${JSON.stringify(next[c])}::jsonb` : next[c]}`),
              sql`, `,
            )} where id = ${row.id}`,
          );
          counter.report.rowsUpdated++;
        }
        return rows.at(-1)?.id;
      });
      opts.onBatch?.(table, { ...counter.report });
      if (!last) break;
      after = last;
    }
  }
  return counter.report;
}

/**
 * Undefined when the key ring opens the stored secrets (or none are stored); else why not. Looks at a sample (the
 * newest values of each kind): when none of those opens, SECRET_KEY was changed without keeping the key they were
 * sealed with in SECRET_KEY_PREVIOUS, and starting would leave every tenant's provider keys and secrets unreadable.
 */
export async function checkKeyRing(db: Db, box: SecretBox, sample = 20): Promise<string | undefined> {
  const values = rowsOf<{ v: string }>(
    await db.execute(sql`
      (select secret as v from signing_secrets order by created_at desc limit ${sample})
      union all
      (select secret as v from webhook_endpoints order by created_at desc limit ${sample})
      union all
      (select value as v from (select provider_keys from tenant_configs where provider_keys <> '{}'::jsonb
         order by updated_at desc limit ${sample}) t, jsonb_each_text(t.provider_keys))`),
  )
    .map((r) => r.v)
    .filter((v) => SEALED.test(v));
  if (!values.length || values.some((v) => box.open(v) !== undefined)) return undefined;
  return (
    `none of the ${values.length} stored secrets sampled opens with SECRET_KEY or SECRET_KEY_PREVIOUS: the key they were ` +
    'sealed with is missing (when rotating, move the old SECRET_KEY into SECRET_KEY_PREVIOUS, then run npm run secrets:rotate)'
  );
}
