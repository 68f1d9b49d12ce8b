// What the caller heard of a sentence cut short: the words its played audio covered.
import { describe, expect, it } from 'vitest';
import { heardWords } from './speaker.js';

describe('heardWords', () => {
  const s = 'Second, we have free parking.';
  it('keeps only words heard to their end, characters standing in for speaking time', () => {
    expect(heardWords(s, 0)).toBe('');
    expect(heardWords(s, 6 / 29)).toBe(''); // "Second," is 7 of 29 characters
    expect(heardWords(s, 7 / 29)).toBe('Second,');
    expect(heardWords(s, 0.49)).toBe('Second, we');
    expect(heardWords(s, 1)).toBe(s);
    expect(heardWords(s, 3)).toBe(s);
    expect(heardWords(s, -1)).toBe('');
  });
});
