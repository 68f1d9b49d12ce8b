import { describe, expect, it } from 'vitest';
import { cosine } from './embedder.js';
import { LocalEmbedder, terms } from './local-embedder.js';

const e = new LocalEmbedder();

describe('LocalEmbedder', () => {
  it('gives deterministic unit vectors of its dimension', async () => {
    const [a, b] = await e.embed(['The clinic opens at nine.', 'The clinic opens at nine.']);
    expect(a).toHaveLength(384);
    expect(Array.from(a!)).toEqual(Array.from(b!));
    expect(Math.hypot(...a!)).toBeCloseTo(1, 5);
    expect(new LocalEmbedder(64).embedOne('x')).toHaveLength(64);
  });

  it('ranks the passage that shares the question’s words above unrelated ones', () => {
    const q = e.embedOne('When does the clinic open on Saturdays?');
    const hit = e.embedOne('On Saturdays the clinic is open from 9 am to 1 pm.');
    const near = e.embedOne('Our pharmacy next door opens at 8 am.');
    const off = e.embedOne('eSIM data plans can be topped up in the app.');
    expect(cosine(q, hit)).toBeGreaterThan(cosine(q, near));
    expect(cosine(q, near)).toBeGreaterThan(cosine(q, off));
  });

  it('matches word variants through stems', () => {
    const q = e.embedOne('booking an appointment');
    expect(cosine(q, e.embedOne('how to book appointments'))).toBeGreaterThan(cosine(q, e.embedOne('parking behind the building')));
    expect(terms('The Bookings were BOOKED')).toEqual(['booking', 'book']);
  });

  it('embeds empty or symbol-only text as a zero vector instead of NaN', () => {
    const v = e.embedOne('?!');
    expect(Array.from(v).every((x) => x === 0)).toBe(true);
  });
});
