import { describe, expect, it } from 'vitest';
import type { Turn } from '../api/types';
import { turnAt } from './call-page';

const turn = (seq: number, start_ms: number | null, end_ms: number | null): Turn => ({
  seq,
  speaker: seq % 2 ? 'agent' : 'caller',
  text: '',
  truncated: false,
  start_ms,
  end_ms,
  interrupted: false,
  citations: [],
  metrics: {},
  created_at: '',
});

describe('turnAt (the turn heard at a point of the recording)', () => {
  const turns = [turn(1, 500, 2000), turn(2, 3000, 4500), turn(3, 4200, null), turn(4, null, null)];
  it('finds the turn being heard, the later one where they overlap, none in the gaps', () => {
    expect(turnAt(turns, 0)).toBeNull();
    expect(turnAt(turns, 1000)).toBe(1);
    expect(turnAt(turns, 2500)).toBeNull();
    expect(turnAt(turns, 3500)).toBe(2);
    expect(turnAt(turns, 4300)).toBe(3);
    expect(turnAt(turns, 99_000)).toBe(3);
  });
});
