// What a caller hears (not a test): the SQuAD questions asked in chat to a tenant whose knowledge is the 55 Notre Dame
// passages, at the tenant's default settings and with no keys (the local responder answers from what retrieval
// returns). Counts the replies that contain a gold answer (SQuAD's normalisation: lower case, no punctuation or
// articles). Then ingestion speed through the real worker (documents of 100 sections). Written against APIs that
// predate BM25 too, so the same file measures "before" in a worktree of an older commit.
//
//   npm run bench:rag-chat                    # replies + ingestion of 3,000 chunks
//   npm run bench:rag-chat -- --ingest 0      # replies only
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, loadavg } from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import pino from 'pino';
import { loadConfig } from '../src/config.js';
import { rowsOf } from '../src/db/client.js';
import { tenants } from '../src/db/schema.js';
import { buildDeps, closeDeps } from '../src/deps.js';
import { IngestionWorker } from '../src/rag/ingestion.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const SQUAD = args.get('squad') ?? path.join(import.meta.dirname, 'data', 'squad-notre-dame.json');
const INGEST_CHUNKS = Number(args.get('ingest') ?? 3000);

const squad = JSON.parse(readFileSync(SQUAD, 'utf8')) as {
  data: { paragraphs: { context: string; qas: { question: string; answers: { text: string }[] }[] }[] }[];
};
const paragraphs = squad.data.flatMap((a) => a.paragraphs);
const passages = paragraphs.map((p) => p.context);
const questions = paragraphs.flatMap((p) => p.qas);

/** SQuAD's answer normalisation. */
const normalise = (s: string) =>
  ` ${s
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .replace(/\b(a|an|the)\b/g, ' ')
    .replace(/\s+/g, ' ')
    .trim()} `;

const dir = mkdtempSync(path.join(tmpdir(), 'va-bench-rag-chat-'));
const config = loadConfig({
  NODE_ENV: 'test',
  DATA_DIR: dir,
  SECRET_KEY: 'bench-secret-key-that-is-long-enough-0123456789',
  INGEST_CONCURRENCY: '0',
  DATABASE_POOL_MAX: '1',
  DOCUMENT_MAX_BYTES: String(64 * 1024 * 1024),
});
const quiet = pino({ level: 'silent' });
const deps = await buildDeps(config, quiet);
const worker = new IngestionWorker(deps.database.db, deps.embedders, deps.documentPool, quiet, {
  concurrency: 0,
  leaseMs: 600_000,
  maxAttempts: 1,
});
const drain = async () => {
  while (await worker.runOnce()) {
    /* next document */
  }
};
try {
  const [tenant] = await deps.database.db.insert(tenants).values({ name: 'squad chat' }).returning({ id: tenants.id });
  for (const [i, text] of passages.entries()) await deps.documents.create(tenant!.id, { title: `Passage ${i}`, bytes: Buffer.from(text) });
  await drain();
  const { agent } = await deps.providers.agentFor(tenant!.id);
  let answered = 0;
  let silent = 0;
  for (const q of questions) {
    let reply = '';
    for await (const e of agent.reply([], q.question)) if (e.type === 'text') reply += e.text;
    if (/do not have information/.test(reply)) silent++;
    const said = normalise(reply);
    if (q.answers.some((a) => said.includes(normalise(a.text)))) answered++;
  }
  console.log(
    `chat replies containing a gold answer: ${answered}/${questions.length} = ${(answered / questions.length).toFixed(3)}` +
      ` ("I do not have information": ${silent})`,
  );

  if (INGEST_CHUNKS > 0) {
    // Synthetic documents of SQuAD sentences, as bench:rag's scale part makes them; three tenants.
    const sentences = passages.flatMap((p) => p.match(/[^.!?]+[.!?]+/g) ?? []).map((s) => s.trim());
    let seed = 7;
    const random = () => (seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31) / 2 ** 31;
    const owners = await deps.database.db
      .insert(tenants)
      .values([0, 1, 2].map((i) => ({ name: `ingest ${i}` })))
      .returning({ id: tenants.id });
    const docs = Math.ceil(INGEST_CHUNKS / 100);
    for (let d = 0; d < docs; d++) {
      const text = Array.from({ length: 100 }, (_, s) => {
        const body = Array.from({ length: 4 }, () => sentences[Math.floor(random() * sentences.length)]).join(' ');
        return `# Record ${d}-${s}\n\n${body} Reference code R${d}x${s}.`;
      }).join('\n\n');
      await deps.documents.create(owners[d % 3]!.id, { title: `Doc ${d}`, bytes: Buffer.from(text) });
    }
    const t0 = performance.now();
    await drain();
    const s = (performance.now() - t0) / 1000;
    const [{ n } = { n: 0 }] = rowsOf<{ n: number }>(
      await deps.database.db.execute(sql`select count(*)::int as n from document_chunks c join documents d on d.id = c.document_id
        where d.tenant_id <> ${tenant!.id}`),
    );
    console.log(
      `ingestion (worker, ${docs} documents, ${n} chunks): ${s.toFixed(1)} s, ${(n / s).toFixed(0)} chunks/s; load ${loadavg()
        .map((x) => x.toFixed(2))
        .join(' ')}`,
    );
  }
} finally {
  await closeDeps(deps);
  rmSync(dir, { recursive: true, force: true });
}
