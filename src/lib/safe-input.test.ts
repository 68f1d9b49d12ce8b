import { describe, expect, it } from 'vitest';
import { findUnsafeInput, MAX_INPUT_DEPTH, unsafeTextReason } from './safe-input.js';

describe('safe input', () => {
  it('accepts ordinary text, paired surrogates (emoji) and every other control character', () => {
    for (const s of ['', 'hello', 'Zoë 日本 😀', '\t\n\r\u0001\u001f\u007f', '\ud83d\ude00\ud83d\ude00'])
      expect(unsafeTextReason(s), s).toBeUndefined();
  });

  it('refuses NUL and unpaired surrogates anywhere in a string', () => {
    for (const s of ['\u0000', 'a\u0000b', '\ud800', 'x\ud800', '\ud800x', '\udc00', 'a\udfffb', '\ude00\ud83d', '😀\ud83d']) {
      expect(unsafeTextReason(s), JSON.stringify(s)).toBeDefined();
    }
  });

  it('names where the bad text is, in values and in keys', () => {
    expect(findUnsafeInput({ a: [1, 'ok', { b: 'x\u0000' }] })).toEqual({ path: ['a', 2, 'b'], message: expect.stringContaining('NUL') });
    expect(findUnsafeInput({ tools: [{ parameters: { properties: { ['k\ud800']: {} } } }] })).toMatchObject({
      path: ['tools', 0, 'parameters', 'properties'],
    });
    expect(findUnsafeInput('\ud800')).toMatchObject({ path: [] });
    expect(findUnsafeInput({ a: 1, b: null, c: true, d: ['fine'] })).toBeUndefined();
    // Buffers (raw bodies) are not walked.
    expect(findUnsafeInput(Buffer.from([0, 0]))).toBeUndefined();
  });

  it('refuses nesting past the limit, however deep, without recursion', () => {
    const nest = (n: number) => {
      let v: unknown = 'leaf';
      for (let i = 0; i < n; i++) v = i % 2 ? { a: v } : [v];
      return v;
    };
    expect(findUnsafeInput(nest(MAX_INPUT_DEPTH))).toBeUndefined();
    expect(findUnsafeInput(nest(MAX_INPUT_DEPTH + 1))?.message).toMatch(/nested more than/);
    expect(findUnsafeInput(nest(1_000_000))?.message).toMatch(/nested more than/);
  });
});
