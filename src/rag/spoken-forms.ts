// What a caller's words look like once transcribed ("e sim", "twenty five") next to how documents write them
// ("eSIM", "25"): a spoken query is searched with the written forms added, so retrieval finds the same passages
// for a voice call as for a typed question.

const UNITS: Record<string, number> = {
  zero: 0,
  oh: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
};
const TENS: Record<string, number> = { twenty: 20, thirty: 30, forty: 40, fifty: 50, sixty: 60, seventy: 70, eighty: 80, ninety: 90 };
const SCALES: Record<string, number> = { hundred: 100, thousand: 1000, million: 1_000_000 };
/** Single letters that are words on their own: never glued to the next word. */
const LETTER_WORDS = new Set(['a', 'i']);

/** Spoken number words -> digits: "twenty five" -> "25", "two hundred and fifty" -> "250", "nine" -> "9". */
function numbers(words: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < words.length;) {
    let total = 0;
    let current = 0;
    let j = i;
    let any = false;
    for (; j < words.length; j++) {
      const w = words[j]!;
      if (w in UNITS && !(w === 'oh' && !any)) current += UNITS[w]!;
      else if (w in TENS) current += TENS[w]!;
      else if (w in SCALES) {
        if (!any) break;
        if (SCALES[w]! === 100) current *= 100;
        else {
          total += current * SCALES[w]!;
          current = 0;
        }
      } else if (w === 'and' && any && j + 1 < words.length && (words[j + 1]! in UNITS || words[j + 1]! in TENS)) continue;
      else break;
      any = true;
    }
    if (any) {
      out.push(String(total + current));
      i = j;
    } else i++;
  }
  return out;
}

/**
 * The query plus the written forms of what it says: digits for number words, and a letter glued to the word after
 * it ("e sim" -> "esim", "e mail" -> "email": speech-to-text splits what documents write as one word). The original
 * words stay, so nothing the caller said is lost.
 */
export function withWrittenForms(query: string): string {
  const words = query.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  const extra: string[] = [...numbers(words)];
  for (let i = 0; i + 1 < words.length; i++) {
    const [a, b] = [words[i]!, words[i + 1]!];
    if (a.length === 1 && /\p{L}/u.test(a) && !LETTER_WORDS.has(a) && b.length >= 2) extra.push(a + b);
  }
  return extra.length ? `${query} ${extra.join(' ')}` : query;
}
