// The digit a spoken digit word stands for ("oh" and a lone "o" are how callers say 0): one table for the turn
// rules that read dictated numbers (endpointing.ts) and for reading digits out of a transcript (the local STT).
export const DIGIT_OF: Readonly<Record<string, string>> = {
  zero: '0',
  oh: '0',
  o: '0',
  one: '1',
  two: '2',
  three: '3',
  four: '4',
  five: '5',
  six: '6',
  seven: '7',
  eight: '8',
  nine: '9',
};
