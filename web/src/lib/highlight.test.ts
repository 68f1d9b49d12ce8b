import { describe, expect, it } from 'vitest';
import { highlightParts } from './highlight';

describe('highlightParts', () => {
  it('splits the text around the query’s words, whatever their case', () => {
    expect(highlightParts('Free parking on Elm Street', 'where is PARKING on elm')).toEqual([
      { text: 'Free ', match: false },
      { text: 'parking', match: true },
      { text: ' on ', match: false },
      { text: 'Elm', match: true },
      { text: ' Street', match: false },
    ]);
  });

  it('keeps markup as text and treats regex characters in the query literally', () => {
    const parts = highlightParts('<img src=x onerror=alert(1)> (a+b)', 'img a+b');
    expect(parts.map((p) => p.text).join('')).toBe('<img src=x onerror=alert(1)> (a+b)');
    expect(parts.filter((p) => p.match).map((p) => p.text)).toEqual(['img']);
  });
});
