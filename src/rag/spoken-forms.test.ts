import { describe, expect, it } from 'vitest';
import { withWrittenForms } from './spoken-forms.js';

describe('withWrittenForms', () => {
  it('adds digits for spoken numbers', () => {
    expect(withWrittenForms('do you have a plan with twenty gigabytes')).toBe('do you have a plan with twenty gigabytes 20');
    expect(withWrittenForms('twenty five euros or two hundred and fifty')).toContain(' 25 250');
    expect(withWrittenForms('room nine')).toBe('room nine 9');
    expect(withWrittenForms('one thousand two hundred')).toContain(' 1200');
  });

  it('glues a spelled letter to its word, as documents write it', () => {
    expect(withWrittenForms('how do I install the e sim')).toContain(' esim');
    expect(withWrittenForms('can I send an e mail')).toContain(' email');
    // "a" and "I" are words, not letters.
    expect(withWrittenForms('I need a taxi')).toBe('I need a taxi');
  });

  it('keeps the query as it is when nothing is spoken differently', () => {
    expect(withWrittenForms('Where is the free parking?')).toBe('Where is the free parking?');
  });
});
