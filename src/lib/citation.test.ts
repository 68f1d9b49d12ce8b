// A citation's snippet is short and bounded, whatever the passage.
import { describe, expect, it } from 'vitest';
import { citationOf, citationSchema, SNIPPET_MAX_CHARS, snippetOf } from './citation.js';

describe('citations', () => {
  it('keep a short passage whole, whitespace collapsed', () => {
    expect(snippetOf('  We open\n\nat nine.  ')).toBe('We open at nine.');
  });

  it('cut a long passage at a word boundary, with an ellipsis, within the bound', () => {
    const long = 'word '.repeat(500);
    const s = snippetOf(long);
    expect(s.length).toBeLessThanOrEqual(SNIPPET_MAX_CHARS);
    expect(s.endsWith('word…')).toBe(true);
    const oneWord = 'x'.repeat(5000);
    expect(snippetOf(oneWord).length).toBe(SNIPPET_MAX_CHARS);
    // Never half of a surrogate pair.
    expect(snippetOf('😀'.repeat(300))).not.toMatch(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/);
  });

  it('describe a passage in the one schema', () => {
    const c = citationOf({
      chunkId: '00000000-0000-4000-8000-000000000001',
      documentId: '00000000-0000-4000-8000-000000000002',
      documentTitle: 'Handbook',
      headingPath: ['Clinic', 'Hours'],
      page: 3,
      text: 'a '.repeat(1000),
    });
    expect(citationSchema.parse(c)).toEqual(c);
    expect(c).toMatchObject({ title: 'Handbook', heading_path: ['Clinic', 'Hours'], page: 3 });
  });
});
