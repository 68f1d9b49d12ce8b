import { describe, expect, it } from 'vitest';
import { type Block, chunkBlocks, estimateTokens, splitSentences } from './chunking.js';

const sentence = (i: number) => `Sentence number ${i} talks about the clinic opening hours and parking rules.`;

describe('chunking', () => {
  it('keeps heading paths and never lets a chunk straddle two sections', () => {
    const blocks: Block[] = [
      { kind: 'heading', level: 1, text: 'Clinic' },
      { kind: 'paragraph', text: 'We are open every weekday.' },
      { kind: 'heading', level: 2, text: 'Parking' },
      { kind: 'paragraph', text: 'Parking is free behind the building.' },
      { kind: 'heading', level: 2, text: 'Prices' },
      { kind: 'paragraph', text: 'A consultation costs 40 euros.' },
      { kind: 'heading', level: 1, text: 'Travel' },
      { kind: 'paragraph', text: 'eSIMs work in 120 countries.' },
    ];
    const chunks = chunkBlocks(blocks, { maxTokens: 200, overlapTokens: 20 });
    expect(chunks.map((c) => [c.headingPath, c.text])).toEqual([
      [['Clinic'], 'We are open every weekday.'],
      [['Clinic', 'Parking'], 'Parking is free behind the building.'],
      [['Clinic', 'Prices'], 'A consultation costs 40 euros.'],
      [['Travel'], 'eSIMs work in 120 countries.'],
    ]);
    expect(chunks.map((c) => c.index)).toEqual([0, 1, 2, 3]);
  });

  it('packs paragraphs up to the budget, splits long ones by sentence, and overlaps whole sentences', () => {
    const long = Array.from({ length: 40 }, (_, i) => sentence(i)).join(' ');
    const chunks = chunkBlocks([{ kind: 'paragraph', text: long, page: 3 }], { maxTokens: 60, overlapTokens: 25 });
    expect(chunks.length).toBeGreaterThan(5);
    for (const c of chunks) {
      expect(c.tokenCount).toBeLessThanOrEqual(60);
      expect(c.tokenCount).toBe(estimateTokens(c.text));
      expect(c.page).toBe(3);
      expect(c.text).toMatch(/^Sentence number \d+ .*rules\.$/);
    }
    // Every sentence is somewhere, in order, and consecutive chunks share their boundary sentence.
    const all = chunks.map((c) => c.text).join(' ');
    for (let i = 0; i < 40; i++) expect(all).toContain(sentence(i));
    for (let i = 1; i < chunks.length; i++) {
      const prevLast = splitSentences(chunks[i - 1]!.text).at(-1)!;
      expect(chunks[i]!.text.startsWith(prevLast)).toBe(true);
    }
  });

  it('splits a sentence longer than a chunk by words, losing nothing', () => {
    const words = Array.from({ length: 300 }, (_, i) => `w${i}`);
    const chunks = chunkBlocks([{ kind: 'paragraph', text: words.join(' ') }], { maxTokens: 50, overlapTokens: 0 });
    expect(
      chunks
        .map((c) => c.text)
        .join(' ')
        .split(' '),
    ).toEqual(words);
    expect(Math.max(...chunks.map((c) => c.tokenCount))).toBeLessThanOrEqual(50);
  });

  it('never lets a chunk straddle two pages (the heading path goes on), and skips empty blocks', () => {
    const chunks = chunkBlocks(
      [
        { kind: 'heading', level: 1, text: 'Policy', page: 1 },
        { kind: 'paragraph', text: 'End of page one.', page: 1 },
        { kind: 'paragraph', text: '   ', page: 2 },
        { kind: 'paragraph', text: 'Start of page two.', page: 2 },
        { kind: 'paragraph', text: 'More of page two.', page: 2 },
      ],
      { maxTokens: 100, overlapTokens: 10 },
    );
    expect(chunks.map((c) => [c.page, c.headingPath, c.text])).toEqual([
      [1, ['Policy'], 'End of page one.'],
      [2, ['Policy'], 'Start of page two.\n\nMore of page two.'],
    ]);
  });

  it('rejects nonsensical budgets', () => {
    expect(() => chunkBlocks([], { maxTokens: 4, overlapTokens: 0 })).toThrow();
    expect(() => chunkBlocks([], { maxTokens: 100, overlapTokens: 60 })).toThrow();
  });
});
