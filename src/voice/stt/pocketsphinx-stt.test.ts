import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { wer } from '../../../bench/local-stt.js';
import { ProviderError } from '../../lib/provider-error.js';
import { concatPcm, dbfs, parseWav, resample, toFrames } from '../audio.js';
import { EspeakTts } from '../tts/espeak-tts.js';
import { corpusSentences, digitsFrom, languageModel, PocketsphinxStt, type PocketsphinxStream } from './pocketsphinx-stt.js';
import type { SttEvent, SttStream } from './stt.js';

type Final = Extract<SttEvent, { type: 'final' }>;

// espeak-ng's Klatt voice: the default voice is recognized much worse (bench/local-stt.ts).
async function speech(text: string, sampleRate: number): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const f of new EspeakTts({ sampleRate, voice: 'en-us+klatt' }).synthesize(text)) parts.push(f.pcm);
  return concatPcm(parts);
}

/** The audio up to its last voiced 10 ms: no trailing silence the engine could end the utterance on. */
function voicedPart(pcm: Int16Array, sampleRate: number): Int16Array {
  const w = sampleRate / 100;
  let end = 0;
  for (let i = 0; i + w <= pcm.length; i += w) if (dbfs(pcm.subarray(i, i + w)) > -40) end = i + w;
  return pcm.subarray(0, end);
}

const silence = (ms: number, sampleRate: number) => new Int16Array((sampleRate * ms) / 1000);

function pushAll(stream: SttStream, parts: Int16Array[], sampleRate: number, startMs = 0): void {
  const pcm = concatPcm(parts);
  for (const frame of toFrames(pcm, sampleRate, startMs)) stream.push(frame);
}

/** Every event until the iterator ends, or the error it threw. */
async function drain(stream: SttStream): Promise<{ events: SttEvent[]; error?: unknown }> {
  const events: SttEvent[] = [];
  try {
    for await (const e of stream.events) events.push(e);
    return { events };
  } catch (error) {
    return { events, error };
  }
}

const finals = (events: SttEvent[]) => events.filter((e): e is Final => e.type === 'final');

function nextFinal(stream: SttStream, timeoutMs: number): Promise<Final | undefined> {
  const it = stream.events[Symbol.asyncIterator]();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    const pull = (): void => {
      it.next().then((r) => {
        if (r.done) return (clearTimeout(timer), resolve(undefined));
        if (r.value.type === 'final') return (clearTimeout(timer), resolve(r.value));
        pull();
      }, reject);
    };
    pull();
  });
}

/** The children of a stream's sh (cat and the engine), from /proc. */
function processes(pid: number): { pid: number; name: string }[] {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.map((c) => ({ pid: c, name: readFileSync(`/proc/${c}/comm`, 'utf8').trim() }));
}

function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return '';
  }
}

const fixture = (name: string) => parseWav(readFileSync(new URL(`../../../test/fixtures/audio/${name}`, import.meta.url)));

describe('PocketsphinxStt (pocketsphinx_continuous, en-us model)', () => {
  // WER measured 0.11 at 16 kHz and 0.22 at 8 kHz (one word of nine: "had", "cop"); the bound leaves room.
  const SENTENCE = 'My daughter has a fever and a bad cough';

  it('transcribes a spoken sentence at 16 kHz, with times in the caller’s timeline', async () => {
    const stream = new PocketsphinxStt({ sampleRate: 16000 }).stream({});
    const pcm = await speech(SENTENCE, 16000);
    // The stream starts 1 s into the call: times count from that first frame's timestamp.
    pushAll(stream, [silence(300, 16000), pcm, silence(300, 16000)], 16000, 1000);
    stream.flush();
    const final = await nextFinal(stream, 10_000);
    await stream.close();
    expect(final).toBeDefined();
    expect(wer(SENTENCE, final!.text)).toBeLessThanOrEqual(0.4);
    expect(final!.endOfTurn).toBe(true);
    expect(final!.confidence).toBeGreaterThan(0);
    expect(final!.startMs).toBeGreaterThanOrEqual(1000 + 300 - 100);
    expect(final!.endMs).toBeLessThanOrEqual(1000 + 300 + pcm.length / 16 + 100);
    expect(final!.endMs - final!.startMs).toBeGreaterThan(1000);
  });

  it('transcribes 8 kHz phone audio (upsampled to the 16 kHz model)', async () => {
    const stream = new PocketsphinxStt({ sampleRate: 8000 }).stream({});
    pushAll(stream, [silence(300, 8000), await speech(SENTENCE, 8000), silence(300, 8000)], 8000);
    stream.flush();
    const final = await nextFinal(stream, 10_000);
    await stream.close();
    expect(wer(SENTENCE, final?.text ?? '')).toBeLessThanOrEqual(0.45);
  });

  it('gives two utterances separated by silence as two finals, in order, at their places in the stream', async () => {
    const first = await speech('Is there a parking lot near the clinic', 16000);
    const second = await speech(SENTENCE, 16000);
    const stream = new PocketsphinxStt({ sampleRate: 16000 }).stream({});
    const all = drain(stream);
    const secondAt = 300 + first.length / 16 + 1500;
    // No flush: the engine's own VAD ends the first utterance; close() delivers the second.
    pushAll(stream, [silence(300, 16000), first, silence(1500, 16000), second, silence(300, 16000)], 16000);
    await stream.close();
    const got = finals((await all).events);
    expect(got).toHaveLength(2);
    expect(wer('Is there a parking lot near the clinic', got[0]!.text)).toBeLessThanOrEqual(0.5);
    expect(wer(SENTENCE, got[1]!.text)).toBeLessThanOrEqual(0.4);
    expect(got[0]!.endMs).toBeLessThan(got[1]!.startMs);
    expect(got[0]!.endMs).toBeLessThan(secondAt);
    expect(got[1]!.startMs).toBeGreaterThan(secondAt - 200);
  });

  it('hears the right digit in digits mode (real speakers, 8 kHz)', async () => {
    const stt = new PocketsphinxStt({ sampleRate: 8000, mode: 'digits' });
    const heard = await Promise.all(
      ['0_jackson_0.wav', '3_nicolas_1.wav'].map(async (name) => {
        const { pcm, sampleRate } = fixture(name);
        const stream = stt.stream({});
        const all = drain(stream);
        pushAll(stream, [silence(300, 8000), resample(pcm, sampleRate, 8000), silence(300, 8000)], 8000);
        stream.flush();
        await stream.close();
        return finals((await all).events).map((f) => f.text);
      }),
    );
    expect(heard.map((texts) => digitsFrom(texts.join(' ')))).toEqual(['0', '3']);
    // The grammar search reports no useful confidence, so there is none.
    expect(heard.flat().every((t) => /^(zero|oh|one|two|three|four|five|six|seven|eight|nine)( |$)/.test(t))).toBe(true);
  });

  it('flush() forces the final out without more audio', async () => {
    const stream = new PocketsphinxStt({ sampleRate: 16000 }).stream({});
    pushAll(stream, [silence(300, 16000), voicedPart(await speech(SENTENCE, 16000), 16000)], 16000);
    // Without flush and without trailing silence the engine cannot know the utterance ended.
    expect(await nextFinal(stream, 1200)).toBeUndefined();
    // No time bound here: the proof is that the final comes after flush() and not before it, whatever the load.
    stream.flush();
    const final = await nextFinal(stream, 10_000);
    expect(final).toBeDefined();
    expect(wer(SENTENCE, final!.text)).toBeLessThanOrEqual(0.4);
    await stream.close();
  });

  it('close() delivers the utterance in progress, then ends the iterator; pushes after it are ignored', async () => {
    const stream = new PocketsphinxStt({ sampleRate: 8000, mode: 'digits' }).stream({});
    const all = drain(stream);
    const { pcm } = fixture('3_nicolas_1.wav');
    pushAll(stream, [silence(300, 8000), pcm], 8000);
    await stream.close();
    stream.push({ pcm: silence(20, 8000), sampleRate: 8000, timestampMs: 0 });
    stream.flush();
    const { events, error } = await all;
    expect(error).toBeUndefined();
    expect(finals(events).map((f) => digitsFrom(f.text))).toEqual(['3']);
  });

  // An excerpt of the eSIM seller's document in bench/local-stt.ts; the questions are in neither it nor the generic
  // caller phrasing. The general model heard "so by switch on real big" and "can i buy more day to day apps".
  const ESIM_DOCUMENT = `NomadSIM sells prepaid eSIM data plans for travellers in more than 150 countries.
When you arrive, switch your mobile data to the NomadSIM line and turn on data roaming for it.
If you run out of data, you can buy a top up in the app or on our website without installing a new eSIM.
You can get a full refund if the eSIM has not been installed and the plan has not started, within 30 days.`;

  it('recognizes the words of a document in a question it does not contain (domain mode)', async () => {
    const stt = new PocketsphinxStt({ sampleRate: 16000, mode: 'domain', corpus: ESIM_DOCUMENT });
    expect(stt.outOfVocabulary).toEqual([]);
    const stream = stt.stream({});
    const all = drain(stream);
    const questions = ['Should I switch on roaming', 'Can I buy more data in the app'];
    for (const q of questions) pushAll(stream, [silence(300, 16000), await speech(q, 16000), silence(300, 16000)], 16000);
    await stream.close();
    const heard = finals((await all).events).map((f) => f.text);
    expect(heard).toHaveLength(2);
    expect(heard[0]).toContain('roaming');
    expect(heard[1]).toMatch(/\bdata\b.*\bapp\b/);
  });

  it('names the corpus words it cannot know, and needs a corpus', () => {
    expect(
      new PocketsphinxStt({ sampleRate: 8000, mode: 'domain', corpus: 'Bluewave Travel books flights. Ask Zorblax.' }).outOfVocabulary,
    ).toEqual(['bluewave', 'zorblax']);
    expect(() => new PocketsphinxStt({ sampleRate: 8000, mode: 'domain', corpus: ' ' })).toThrow(/needs a corpus/);
  });

  it('writes a corpus as the words a caller would say', () => {
    const known = new Set([
      'open',
      'from',
      'to',
      'a',
      'm',
      'p',
      'the',
      'costs',
      'install',
      'e',
      'sim',
      'q',
      'r',
      'code',
      'in',
      'walk',
      'patients',
      'mid',
      'kilos',
      'call',
      'oh',
      'six',
    ]);
    const { sentences, unknown } = corpusSentences(
      'Open from 8:30 am to 5pm. The 20GB plan costs $4.50\nInstall the eSIM (QR code). Walk-in patients; mid-1900s, 23 kg, call 911 or *#06#, Zorblax!',
      {
        has: (w) =>
          known.has(w) ||
          /^(zero|one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|fifty|hundred|nineteen|hundreds|dollars|gigabytes)$/.test(
            w,
          ),
      },
    );
    expect(sentences).toEqual([
      ['open', 'from', 'eight', 'thirty', 'a', 'm', 'to', 'five', 'p', 'm'],
      ['the', 'twenty', 'gigabytes', '<unk>', 'costs', 'four', 'fifty', 'dollars'],
      ['install', 'the', 'e', 'sim', 'q', 'r', 'code'],
      ['walk', 'in', 'patients'],
      ['mid', '<unk>', 'twenty', 'three', 'kilos', 'call', 'nine', 'one', 'one', '<unk>', 'oh', 'six', '<unk>'],
    ]);
    expect(unknown).toEqual(['plan', '1900s', 'or', 'zorblax']);
  });

  it('builds the same model from the same corpus, a proper distribution after every context', () => {
    const corpus = corpusSentences(`${ESIM_DOCUMENT}\nDo you have a plan for Japan? Yes please.`, {
      has: (w) => !/^nomad/.test(w),
    }).sentences;
    const arpa = languageModel(corpus);
    expect(languageModel(corpus)).toBe(arpa);
    expect(arpa).toMatch(/^\\data\\\nngram 1=\d+\nngram 2=\d+\nngram 3=\d+\n/);
    expect(arpa.trim().endsWith('\\end\\')).toBe(true);
    expect(arpa).not.toMatch(/<unk>|NaN|Infinity| {2}/);

    // P(w | context) with back-off, summed over the vocabulary: 1 after any context, seen or not.
    const ngrams = new Map<string, { p: number; bow: number }>();
    let order = 0;
    for (const line of arpa.split('\n')) {
      const header = /^\\(\d)-grams:$/.exec(line);
      if (header) order = Number(header[1]);
      else if (order && /^-?\d/.test(line)) {
        const f = line.split(' ');
        ngrams.set(f.slice(1, 1 + order).join(' '), { p: Number(f[0]), bow: Number(f[1 + order] ?? 0) });
      }
    }
    const vocabulary = [...ngrams.keys()].filter((k) => !k.includes(' ') && k !== '<s>');
    expect(vocabulary).toEqual(expect.arrayContaining(['japan', 'roaming', '</s>']));
    const log10p = (h: string[], w: string): number =>
      ngrams.get([...h, w].join(' '))?.p ?? (ngrams.get(h.join(' '))?.bow ?? 0) + log10p(h.slice(1), w);
    for (const context of [[], ['<s>'], ['the'], ['turn', 'on'], ['a', 'plan'], ['japan', 'roaming']]) {
      expect(vocabulary.reduce((sum, w) => sum + 10 ** log10p(context, w), 0)).toBeCloseTo(1, 2);
    }
    // A pair seen in the corpus is likelier than one never seen.
    expect(log10p(['turn', 'on'], 'data')).toBeGreaterThan(log10p(['turn', 'on'], 'japan') + 1);
  });

  it('reports a missing engine or model as a ProviderError, and a crash mid-stream as a retryable one', async () => {
    for (const stt of [
      new PocketsphinxStt({ sampleRate: 16000, binary: '/nonexistent/pocketsphinx_continuous' }),
      new PocketsphinxStt({ sampleRate: 8000, modelDir: '/nonexistent/model' }),
    ]) {
      const stream = stt.stream({});
      // Frames every 20 ms, as in a call: a first one may still reach the pipe before the missing engine's end
      // closes it (cat then waits for more), the next one finds the pipe closed.
      const frames = setInterval(() => stream.push({ pcm: silence(20, stt.sampleRate), sampleRate: stt.sampleRate, timestampMs: 0 }), 20);
      const { error } = await drain(stream);
      clearInterval(frames);
      expect(error).toBeInstanceOf(ProviderError);
      expect((error as ProviderError).message).toBe(
        'local: pocketsphinx is not installed (Debian packages pocketsphinx, pocketsphinx-en-us)',
      );
      expect((error as ProviderError).retryable).toBe(false);
      await stream.close();
    }

    const stream = new PocketsphinxStt({ sampleRate: 8000, mode: 'digits' }).stream({}) as PocketsphinxStream;
    const all = drain(stream);
    pushAll(stream, [silence(500, 8000)], 8000);
    // Kill the engine itself (a child of the stream's sh), as the OOM killer would; the next audio reveals it.
    let engine: number | undefined;
    for (let i = 0; i < 100 && !engine; i++) {
      engine = processes(stream.pid!).find((p) => p.name.startsWith('pocketsphinx'))?.pid;
      if (!engine) await sleep(20);
    }
    process.kill(engine!, 'SIGKILL');
    await sleep(50);
    pushAll(stream, [silence(500, 8000)], 8000);
    const { error } = await all;
    expect(error).toBeInstanceOf(ProviderError);
    expect((error as ProviderError).message).toMatch(/pocketsphinx was killed/);
    expect((error as ProviderError).retryable).toBe(true);
    await stream.close();
  });

  it('stops at once when aborted: the engine is killed and the iterator ends without an error', async () => {
    const controller = new AbortController();
    const stream = new PocketsphinxStt({ sampleRate: 16000 }).stream({ signal: controller.signal }) as PocketsphinxStream;
    const all = drain(stream);
    pushAll(stream, [silence(300, 16000), await speech(SENTENCE, 16000)], 16000);
    // The shell forks each child before it execs its program: on a busy machine a child may still be named `sh`.
    let children = processes(stream.pid!);
    for (
      let i = 0;
      i < 100 &&
      children
        .map((p) => p.name)
        .sort()
        .join() !== 'cat,pocketsphinx_co';
      i++
    ) {
      await sleep(20);
      children = processes(stream.pid!);
    }
    expect(children.map((p) => p.name).sort()).toEqual(['cat', 'pocketsphinx_co']);
    controller.abort();
    const { events, error } = await all;
    expect(error).toBeUndefined();
    expect(finals(events)).toEqual([]);
    await stream.close();
    // sh, cat and pocketsphinx are gone (or dead and waiting to be reaped).
    const alive = () => [stream.pid!, ...children.map((p) => p.pid)].filter((pid) => !/^Z|^X|^$/.test(processState(pid)));
    for (let i = 0; i < 50 && alive().length > 0; i++) await sleep(20);
    expect(alive()).toEqual([]);
  });

  it('reads digits from a transcript', () => {
    expect(digitsFrom('four oh two')).toBe('402');
    expect(digitsFrom('My PIN is one two, 3 4!')).toBe('1234');
    expect(digitsFrom('I need it for two people too')).toBe('2');
    expect(digitsFrom('hello')).toBe('');
  });
});
