import { afterEach, describe, expect, it } from 'vitest';
import { makeDocx } from '../../test/fixtures/documents.js';
import { DocumentPool, type DocumentPoolOptions } from './document-pool.js';
import { LocalEmbedder } from './embedders/local-embedder.js';
import { DEFAULT_EXTRACT_LIMITS } from './extract.js';
import { THREAD_NICE } from '../lib/thread-priority.js';
import { loweredBy } from '../../test/threads.js';

const pools: DocumentPool[] = [];
const pool = (o: Partial<DocumentPoolOptions> = {}) => {
  const p = new DocumentPool({
    size: 1,
    maxOldGenerationSizeMb: 256,
    jobTimeoutMs: 60_000,
    limits: DEFAULT_EXTRACT_LIMITS,
    maxChunks: 10_000,
    ...o,
  });
  pools.push(p);
  return p;
};
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
});

describe('DocumentPool (worker threads running the TypeScript job code through tsx)', () => {
  it('extracts and chunks in a worker, and embeds with the local model exactly as the main thread would', async () => {
    const p = pool();
    const chunks = await p.chunk(
      await makeDocx([
        ['Heading1', 'Parking'],
        ['Normal', 'Free parking behind the building.'],
      ]),
      'docx',
    );
    expect(chunks).toMatchObject([{ index: 0, headingPath: ['Parking'], text: 'Free parking behind the building.' }]);
    const local = new LocalEmbedder();
    const [v] = await p.embedder(local).embed(['free parking']);
    expect(Array.from(v!)).toEqual(Array.from(local.embedOne('free parking')));
    // Its worker runs below the event loop (src/lib/thread-priority.ts).
    if (process.platform === 'linux') {
      expect(loweredBy('documents')).toEqual([THREAD_NICE.documents]);
    }
  });

  it('a bad file is an ExtractError with its code; the limits and the chunk cap apply in the worker', async () => {
    const p = pool({ maxChunks: 3 });
    await expect(p.chunk(Buffer.from('<html><body><script>x</script></body></html>'), 'html')).rejects.toMatchObject({
      code: 'empty_document',
    });
    const many = Array.from({ length: 10 }, (_, i) => `# Part ${i}\n\nText ${i}.`).join('\n\n');
    await expect(p.chunk(Buffer.from(many), 'markdown')).rejects.toMatchObject({
      code: 'document_too_complex',
      message: expect.stringMatching(/10 chunks/),
    });
  });

  it('a job past its time budget is stopped with a readable reason, and a fresh worker takes the next job', async () => {
    const p = pool({ jobTimeoutMs: 300 });
    // Chunking ~10 MB of text takes seconds: far past 300 ms, whatever the load.
    const big = Buffer.from('Sentence one is here. Another sentence follows it.\n\n'.repeat(200_000));
    await expect(p.chunk(big, 'text')).rejects.toMatchObject({
      code: 'document_too_complex',
      message: expect.stringMatching(/longer than/),
    });
    const small = await p.chunk(Buffer.from('Still working.'), 'text');
    expect(small).toHaveLength(1);
  });

  it('a job past the heap cap kills only its worker: a readable reason, and the pool goes on', async () => {
    const p = pool({ maxOldGenerationSizeMb: 16 });
    // Millions of tiny paragraphs: the Block and Chunk objects need far more than 16 MB of heap.
    const huge = Buffer.from('a\n\n'.repeat(3_000_000));
    await expect(p.chunk(huge, 'text')).rejects.toMatchObject({ code: 'document_too_complex', message: expect.stringMatching(/memory/) });
    expect(await p.chunk(Buffer.from('Small again.'), 'text')).toHaveLength(1);
  });
});
