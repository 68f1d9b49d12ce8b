import { describe, expect, it } from 'vitest';
import { SentenceSplitter } from './sentences.js';

const split = (deltas: string[]) => {
  const s = new SentenceSplitter();
  const out = deltas.flatMap((d) => s.push(d));
  const rest = s.flush();
  return rest ? [...out, rest] : out;
};

describe('SentenceSplitter', () => {
  it('emits each sentence as soon as it is complete, across arbitrary deltas', () => {
    const s = new SentenceSplitter();
    expect(s.push('Hello the')).toEqual([]);
    expect(s.push('re! How can I')).toEqual(['Hello there!']);
    expect(s.push(' help? We open at 9')).toEqual(['How can I help?']);
    expect(s.flush()).toBe('We open at 9');
  });

  it('does not split decimals, abbreviations, initials or a period with nothing after it yet', () => {
    expect(split(['It costs 3.50 euros. Dr. Smith and J. Doe see patients, e.g. on Mondays. ', 'Call us.'])).toEqual([
      'It costs 3.50 euros.',
      'Dr. Smith and J. Doe see patients, e.g. on Mondays.',
      'Call us.',
    ]);
    const s = new SentenceSplitter();
    expect(s.push('Wait.')).toEqual([]); // the next delta might be "5 minutes"
    expect(s.push('5 minutes. Then go.')).toEqual(['Wait.5 minutes.']);
  });

  it('treats line breaks as boundaries and ignores empty pieces', () => {
    expect(split(['First line\n', '\n', 'Second line'])).toEqual(['First line', 'Second line']);
    expect(split(['   '])).toEqual([]);
  });
});
