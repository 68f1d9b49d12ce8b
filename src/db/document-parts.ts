// Documents' files, stored in parts (schema.ts documentParts) and read back the same way, so that no single statement
// holds the embedded database, which runs on the main thread, for long.
import { and, eq } from 'drizzle-orm';
import { nextTurn } from '../lib/event-loop.js';
import type { Db } from './client.js';
import { documentParts } from './schema.js';

/**
 * A stored file's part (documentParts). Small enough that writing or reading one on the embedded database holds the
 * main thread for tens of milliseconds (measured: 256 KB ~35 ms to write, ~15 ms to read; a 19 MB file in one
 * statement 1.1 s and 0.3 s), large enough that a 24 MB file is ~100 statements.
 */
export const DOCUMENT_PART_BYTES = 256 * 1024;

/**
 * Stores a file as parts, one statement each with a turn of the event loop between them (in the caller's
 * transaction, so a document is never seen with half its file). On the embedded database other queries wait for
 * the transaction meanwhile; timers, requests that do not query and live calls' audio do not.
 */
export async function storeParts(tx: Pick<Db, 'insert'>, documentId: string, bytes: Buffer): Promise<void> {
  for (let offset = 0, part = 0; offset < bytes.length; offset += DOCUMENT_PART_BYTES, part++) {
    if (part > 0) await nextTurn();
    await tx.insert(documentParts).values({ documentId, part, bytes: bytes.subarray(offset, offset + DOCUMENT_PART_BYTES) });
  }
}

/** A stored file read back part by part, with a turn of the event loop between parts; empty when nothing is stored. */
export async function readParts(db: Pick<Db, 'select'>, documentId: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let part = 0; ; part++) {
    if (part > 0) await nextTurn();
    const [row] = await db
      .select({ bytes: documentParts.bytes })
      .from(documentParts)
      .where(and(eq(documentParts.documentId, documentId), eq(documentParts.part, part)));
    if (!row) break;
    parts.push(row.bytes);
  }
  return Buffer.concat(parts);
}
