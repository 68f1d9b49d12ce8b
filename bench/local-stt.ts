// Local speech-to-text benchmark (not a test): PocketsphinxStt, the engine a call uses without keys or network.
//   (a) word error rate on 30 sentences a caller might say to a clinic, a travel agency or an eSIM seller, spoken
//       by espeak-ng (two voices) at 16 kHz (web) and 8 kHz (phone), general mode and domain mode with the sentences
//       as its corpus (with and without the sentence spoken);
//   (b) accuracy on the Free Spoken Digit Dataset (real people, 8 kHz), digits mode vs general mode;
//   (c) latency from the end of speech to the final (after flush(), and by the engine's own endpointing) with audio
//       paced in real time, and the real-time factor (engine CPU time / audio time) with CPU and memory per stream;
//   (d) a tenant's domain model vs the general one on questions its corpus does not contain: three synthetic
//       tenants' documents and questions, and SQuAD's Notre Dame article with its questions; the time to build a
//       domain model, and the engine's load time and memory with it.
//
//   npx tsx bench/local-stt.ts                              # everything (about 13 minutes on 2 cores)
//   npx tsx bench/local-stt.ts --fsdd /path/to/fsdd --squad /path/to/squad.json --latency-sentences 4 --out x.json
//   npx tsx bench/local-stt.ts --only domain                # (d) alone, merged into the existing JSON
//
// Synthetic speech is a weak stand-in for callers: espeak-ng's default voice is recognized far worse than its Klatt
// voices used here (WER 0.75 vs 0.40 at 16 kHz, general mode, a fresh engine per sentence), and real voices differ
// again. The digits recordings are the only real speech here.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { type AudioFrame, concatPcm, dbfs, parseWav, resample, toFrames } from '../src/voice/audio.js';
import { digitsFrom, type PocketsphinxMode, PocketsphinxStt, type PocketsphinxStream } from '../src/voice/stt/pocketsphinx-stt.js';
import type { SttEvent } from '../src/voice/stt/stt.js';
import { EspeakTts } from '../src/voice/tts/espeak-tts.js';
import { terms } from '../src/rag/embedders/local-embedder.js';
import { FSDD_DIR, SQUAD_FILE } from './data.js';

export const SENTENCES = [
  'I would like to book an appointment with the doctor on Tuesday morning',
  'Can I change my appointment to next week',
  'I need to cancel my appointment for tomorrow',
  'What time does the clinic open on Saturday',
  'Do you take walk in patients',
  'My daughter has a fever and a bad cough',
  'I need a refill of my prescription',
  'Is there a parking lot near the clinic',
  'Can I speak to a nurse please',
  'How much does a blood test cost',
  'I want to book a flight to London',
  'Do you have any cheap hotels in Paris',
  'I would like to travel in the first week of June',
  'How much is a return ticket to New York',
  'Can I add a second bag to my booking',
  'My flight was cancelled and I need a new one',
  'Is breakfast included in the price',
  'I want to change the date of my trip',
  'We are two adults and one child',
  'Please send the tickets to my email address',
  'I bought an eSIM and it does not work',
  'How do I install the eSIM on my phone',
  'Which countries are covered by the plan',
  'How much data do I get for ten dollars',
  'My phone says no service',
  'Can I get a refund for my data plan',
  'I need more data for my trip to Japan',
  'Does the plan include phone calls',
  'Thank you very much that is all',
  'Yes please go ahead',
];

export const VOICES = [
  { voice: 'en-us+klatt', wordsPerMinute: 165 },
  { voice: 'en-us+klatt2', wordsPerMinute: 150 },
];

// ---- measures ------------------------------------------------------------------------------------------------

/** Words for scoring: lowercase, punctuation stripped (apostrophes kept: "don't" is one word). */
export function normalizeWords(text: string): string[] {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9' ]+/g, ' ')
    .split(/\s+/)
    .filter(Boolean);
}

/** Word edit distance (substitutions, insertions, deletions) and the reference's length. */
export function wordErrors(reference: string, hypothesis: string): { errors: number; words: number } {
  const r = normalizeWords(reference);
  const h = normalizeWords(hypothesis);
  let previous = Array.from({ length: h.length + 1 }, (_, j) => j);
  for (let i = 1; i <= r.length; i++) {
    const row = [i];
    for (let j = 1; j <= h.length; j++)
      row[j] = Math.min(previous[j]! + 1, row[j - 1]! + 1, previous[j - 1]! + (r[i - 1] === h[j - 1] ? 0 : 1));
    previous = row;
  }
  return { errors: previous[h.length]!, words: r.length };
}

/** Word error rate: word-level Levenshtein distance / reference words. */
export function wer(reference: string, hypothesis: string): number {
  const { errors, words } = wordErrors(reference, hypothesis);
  return words === 0 ? (normalizeWords(hypothesis).length > 0 ? 1 : 0) : errors / words;
}

const percentile = (xs: number[], p: number) =>
  xs.length ? [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.ceil((p / 100) * xs.length) - 1)]! : NaN;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (x: number, digits = 3) => Math.round(x * 10 ** digits) / 10 ** digits;

/**
 * CPU seconds of a stream's processes (sh, and its children cat and pocketsphinx) and the engine's peak resident
 * memory, from /proc.
 */
export function processUsage(pid: number | undefined): { cpuS: number; engineRssMb: number } {
  const usage = { cpuS: 0, engineRssMb: 0 };
  if (!pid) return usage;
  let pids = [String(pid)];
  try {
    pids = pids.concat(readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
    for (const p of pids) {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after "(comm) ": state(3) ppid pgrp ... utime(14) stime(15), numbered from 1 with the pid.
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      usage.cpuS += (Number(f[11]) + Number(f[12])) / clockTicks();
      if (stat.includes('(pocketsphinx_')) {
        const peak = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
        usage.engineRssMb = Number(peak?.[1] ?? 0) / 1024;
      }
    }
  } catch {
    // a process ended between the reads: keep what was read
  }
  return usage;
}

let ticks: number | undefined;
function clockTicks(): number {
  if (ticks === undefined) {
    try {
      ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      ticks = 100;
    }
  }
  return ticks;
}

async function speak(tts: EspeakTts, text: string): Promise<Int16Array> {
  const parts: Int16Array[] = [];
  for await (const f of tts.synthesize(text)) parts.push(f.pcm);
  return concatPcm(parts);
}

/** Where the speech in `pcm` ends (last 10 ms above -40 dBFS): espeak-ng leaves silence after the words. */
export function speechEndMs(pcm: Int16Array, sampleRate: number): number {
  const w = sampleRate / 100;
  let last = 0;
  for (let i = 0; i + w <= pcm.length; i += w) if (dbfs(pcm.subarray(i, i + w)) > -40) last = i + w;
  return (last * 1000) / sampleRate;
}

function collect(events: AsyncIterable<SttEvent>, onFinal?: (e: Extract<SttEvent, { type: 'final' }>) => void) {
  const finals: Extract<SttEvent, { type: 'final' }>[] = [];
  const done = (async () => {
    for await (const e of events) {
      if (e.type !== 'final') continue;
      finals.push(e);
      onFinal?.(e);
    }
  })();
  return { finals, done };
}

export interface TranscribeResult {
  /** One transcript per utterance (the finals whose middle falls in its stretch of the stream, joined). */
  texts: string[];
  audioS: number;
  cpuS: number;
  /** Peak resident memory of the pocketsphinx process. */
  engineRssMb: number;
}

/**
 * Utterances through one stream as fast as the engine takes them (a call's worth of audio in one process, so the
 * normalization adapts as it does in a call): 300 ms of silence around each, flush() after each.
 */
export async function transcribe(stt: PocketsphinxStt, utterances: Int16Array[]): Promise<TranscribeResult> {
  const rate = stt.sampleRate;
  const stream = stt.stream({}) as PocketsphinxStream;
  const { finals, done } = collect(stream.events);
  const gap = new Int16Array((rate * 300) / 1000);
  const spans: [number, number][] = [];
  let atMs = 0;
  let usage = { cpuS: 0, engineRssMb: 0 };
  for (const pcm of utterances) {
    const start = atMs;
    for (const part of [gap, pcm, gap]) {
      for (const frame of toFrames(part, rate, atMs)) stream.push(frame);
      atMs += (part.length * 1000) / rate;
    }
    stream.flush();
    spans.push([start, atMs]);
  }
  // close() lets the engine finish and exit; its CPU time is read until the process is gone.
  let closed = false;
  const closing = stream.close().then(() => (closed = true));
  while (!closed) {
    const now = processUsage(stream.pid);
    if (now.cpuS >= usage.cpuS) usage = { cpuS: now.cpuS, engineRssMb: Math.max(usage.engineRssMb, now.engineRssMb) };
    await Promise.race([closing, sleep(10)]);
  }
  await done;
  const texts = spans.map(([a, b]) =>
    finals
      .filter((f) => (f.startMs + f.endMs) / 2 >= a && (f.startMs + f.endMs) / 2 < b)
      .map((f) => f.text)
      .join(' '),
  );
  return { texts, audioS: atMs / 1000, ...usage };
}

// ---- (a) word error rate on espeak-ng sentences ----------------------------------------------------------------

export interface WerRow {
  voice: string;
  rate: number;
  mode: string;
  sentences: number;
  wer: number;
  /** Engine CPU seconds per second of audio (sh + cat + pocketsphinx). */
  rtf: number;
  engine_rss_mb: number;
}

export async function measureWer(
  opts: { sentences?: string[]; voices?: typeof VOICES; rates?: (8000 | 16000)[]; log?: (line: string) => void } = {},
) {
  const sentences = opts.sentences ?? SENTENCES;
  const rows: WerRow[] = [];
  const samples: { voice: string; rate: number; mode: string; reference: string; hypothesis: string }[] = [];
  for (const { voice, wordsPerMinute } of opts.voices ?? VOICES) {
    for (const rate of opts.rates ?? [16000, 8000]) {
      const tts = new EspeakTts({ sampleRate: rate, voice, wordsPerMinute });
      const audio = await Promise.all(sentences.map((s) => speak(tts, s)));
      const score = (mode: string, texts: string[], usage: { audioS: number; cpuS: number; engineRssMb: number }) => {
        let errors = 0;
        let words = 0;
        texts.forEach((hypothesis, i) => {
          const e = wordErrors(sentences[i]!, hypothesis);
          errors += e.errors;
          words += e.words;
          samples.push({ voice, rate, mode, reference: sentences[i]!, hypothesis });
        });
        const row = {
          voice,
          rate,
          mode,
          sentences: sentences.length,
          wer: round(errors / words),
          rtf: round(usage.cpuS / usage.audioS),
          engine_rss_mb: Math.round(usage.engineRssMb),
        };
        rows.push(row);
        opts.log?.(`  ${voice} ${rate} Hz ${mode}: WER ${row.wer}`);
      };
      const general = await transcribe(new PocketsphinxStt({ sampleRate: rate }), audio);
      score('general', general.texts, general);
      // Domain mode with the sentences as its corpus (callers say what was expected)...
      const domain = await transcribe(new PocketsphinxStt({ sampleRate: rate, mode: 'domain', corpus: sentences.join('\n') }), audio);
      score('domain, sentences in corpus', domain.texts, domain);
      // ...and without the one spoken (the same request in other words): one model per held-out sentence.
      const heldOut = { texts: [] as string[], audioS: 0, cpuS: 0, engineRssMb: 0 };
      for (let i = 0; i < sentences.length; i++) {
        const r = await transcribe(
          new PocketsphinxStt({ sampleRate: rate, mode: 'domain', corpus: sentences.filter((_, j) => j !== i).join('\n') }),
          [audio[i]!],
        );
        heldOut.texts.push(r.texts[0]!);
        heldOut.audioS += r.audioS;
        heldOut.cpuS += r.cpuS;
        heldOut.engineRssMb = Math.max(heldOut.engineRssMb, r.engineRssMb);
      }
      score('domain, sentence held out', heldOut.texts, heldOut);
    }
  }
  return { rows, samples };
}

// ---- (b) the Free Spoken Digit Dataset ---------------------------------------------------------------------------

export interface DigitsRow {
  mode: string;
  files: number;
  correct: number;
  accuracy: number;
}

/** Each recording (8 kHz, "<digit>_<speaker>_<n>.wav") in a fresh stream, as a call switching to digits would get. */
export async function measureDigits(dir: string, opts: { modes?: PocketsphinxMode[]; log?: (line: string) => void } = {}) {
  const files = readdirSync(dir)
    .filter((f) => /^\d_.*\.wav$/.test(f))
    .sort();
  const rows: DigitsRow[] = [];
  const confusions: Record<string, Record<string, number>> = {};
  for (const mode of opts.modes ?? ['digits', 'general']) {
    const stt = new PocketsphinxStt({ sampleRate: 8000, mode });
    let correct = 0;
    const heard: Record<string, number> = {};
    for (const file of files) {
      const { pcm, sampleRate } = parseWav(readFileSync(path.join(dir, file)));
      const { texts } = await transcribe(stt, [resample(pcm, sampleRate, 8000)]);
      const got = digitsFrom(texts[0] ?? '');
      if (got === file[0]) correct++;
      else heard[`${file[0]}->${got || '(none)'}`] = (heard[`${file[0]}->${got || '(none)'}`] ?? 0) + 1;
    }
    confusions[mode] = heard;
    rows.push({ mode, files: files.length, correct, accuracy: round(correct / files.length) });
    opts.log?.(`  FSDD ${mode}: ${correct}/${files.length}`);
  }
  return { rows, confusions };
}

// ---- (c) latency with real-time audio --------------------------------------------------------------------------

export interface LatencyRow {
  rate: number;
  mode: string;
  /** 'flush': flush() at the end of speech, as a call does when its VAD hears silence; 'endpoint': no flush. */
  trigger: 'flush' | 'endpoint';
  utterances: number;
  p50_ms: number;
  p95_ms: number;
  max_ms: number;
}

/**
 * Sentences paced at real time through one stream (20 ms frames), latency from the end of the speech to its final.
 * With 'flush', flush() is called right after the last voiced frame; with 'endpoint', silence keeps coming until
 * the engine's own VAD ends the utterance.
 */
export async function measureLatency(opts: {
  rate: 8000 | 16000;
  mode?: PocketsphinxMode;
  trigger: 'flush' | 'endpoint';
  sentences: string[];
}): Promise<LatencyRow> {
  const rate = opts.rate;
  const mode = opts.mode ?? 'general';
  const tts = new EspeakTts({ sampleRate: rate, ...VOICES[0]! });
  const audio = await Promise.all(opts.sentences.map((s) => speak(tts, s)));
  const stream = new PocketsphinxStt({ sampleRate: rate, mode }).stream({});
  let waiting: ((at: number) => void) | undefined;
  const { done } = collect(stream.events, () => waiting?.(performance.now()));
  const latencies: number[] = [];
  let atMs = 0;
  let startedAt = 0;
  const pushPaced = async (frames: AudioFrame[]) => {
    for (const f of frames) {
      stream.push(f);
      atMs += 20;
      const wait = startedAt + atMs - performance.now();
      if (wait > 0) await sleep(wait);
    }
  };
  // The engine loads its model (about 0.3 s for the general one) while the first silence plays.
  startedAt = performance.now();
  await pushPaced(toFrames(new Int16Array(rate), rate, 0));
  for (const pcm of audio) {
    const voiced = pcm.subarray(0, Math.ceil((speechEndMs(pcm, rate) * rate) / 1000));
    const final = new Promise<number>((resolve) => (waiting = resolve));
    await pushPaced(toFrames(voiced, rate, atMs));
    const speechEnded = performance.now();
    if (opts.trigger === 'flush') stream.flush();
    // Silence goes on in real time until the final comes (or 3 s).
    let got: number | undefined;
    void final.then((t) => (got = t));
    const silence = toFrames(new Int16Array((rate * 20) / 1000), rate, 0);
    for (let i = 0; i < 150 && got === undefined; i++) await pushPaced(silence.map((f) => ({ ...f, timestampMs: atMs })));
    if (got !== undefined) latencies.push(got - speechEnded);
    waiting = undefined;
    await pushPaced(toFrames(new Int16Array((rate * 300) / 1000), rate, atMs));
  }
  await stream.close();
  await done;
  return {
    rate,
    mode,
    trigger: opts.trigger,
    utterances: latencies.length,
    p50_ms: Math.round(percentile(latencies, 50)),
    p95_ms: Math.round(percentile(latencies, 95)),
    max_ms: Math.round(Math.max(...latencies)),
  };
}

// ---- (d) a language model of the tenant's domain vs the general one ------------------------------------------------

/**
 * Three synthetic tenants: a knowledge document each (the corpus of mode 'domain'), and questions a caller might ask
 * about it that are neither its sentences nor sentences of the generic caller phrasing: the model has to generalize.
 * `key`: the words of the question the answer's retrieval hangs on (they are in the document).
 */
export const DOMAIN_TENANTS: { name: string; document: string; questions: { text: string; key: string[] }[] }[] = [
  {
    name: 'clinic',
    document: `Riverside Family Clinic is a general practice at 42 Maple Street, next to the public library. Our doctors see adults and children of all ages.

Opening hours
The clinic is open Monday to Friday from 8:00 am to 6:00 pm, and on Saturday from 9:00 am to 1:00 pm. We are closed on Sundays and public holidays. Outside opening hours, call the nurse advice line on 811, or 911 in an emergency.

Appointments
You can book an appointment by phone, through our website, or at the front desk. A routine appointment lasts 15 minutes; please arrive 10 minutes early to check in. If you cannot come, cancel at least 24 hours before. Missed appointments are charged a fee of $25. Every morning we keep same-day appointments free for urgent problems such as a high fever, an ear infection or a painful injury. Walk-in patients are seen between 8 and 10 am, but patients with a booking go first.

Services
Our family doctors offer check-ups, vaccinations, travel vaccines, prenatal care, minor surgery, and care for long-term conditions such as diabetes, asthma and high blood pressure. A nurse practitioner runs an asthma clinic on Wednesday afternoons. Blood samples are taken in our own laboratory from 7:30 to 11:00 am. Do not eat for 8 hours before a cholesterol or glucose test; water is fine. Results are usually ready within three working days and appear in your patient portal.

Prescriptions
Repeat prescriptions can be requested in the patient portal or by leaving a message on the prescription line. Please allow two working days. Some medicines need a review with your doctor before they are renewed. Green Cross Pharmacy is on the ground floor of the same building.

Fees and insurance
We accept most health insurance plans, including Medicare and Medicaid. Without insurance, a standard visit costs $85 and a blood test panel costs $40. You can pay by card or in cash at the front desk.

Parking and access
Free parking for patients is available in the car park behind the building; the entrance is on Oak Lane. The building has a wheelchair ramp and a lift to the second floor. Bus number 12 stops right outside.

New patients
To register, bring a photo ID, your insurance card and a list of the medicines you take. Registration takes about twenty minutes. Children under 16 are registered by a parent or guardian.`,
    questions: [
      { text: 'Is the clinic open on Sunday', key: ['sunday'] },
      { text: 'Where can I leave my car when I come in', key: ['car'] },
      { text: 'How much is a visit if I have no insurance', key: ['visit', 'insurance'] },
      { text: 'Can I eat breakfast before my blood test', key: ['eat', 'blood'] },
      { text: 'When will I get my test results', key: ['results'] },
      { text: 'Do you give vaccines for a trip abroad', key: ['vaccines'] },
      { text: 'What should I bring to register', key: ['register'] },
      { text: 'Do I have to pay if I miss my appointment', key: ['miss', 'appointment'] },
      { text: 'How can I renew my prescription', key: ['prescription'] },
      { text: 'Is there a pharmacy nearby', key: ['pharmacy'] },
      { text: 'Which bus stops at the clinic', key: ['bus'] },
      { text: 'When is the asthma clinic', key: ['asthma'] },
      { text: 'Can I come in without a booking this morning', key: ['booking'] },
      { text: 'Is there a lift in the building', key: ['lift'] },
      { text: 'Do you take Medicare', key: ['medicare'] },
    ],
  },
  {
    name: 'travel agency',
    document: `Bluewave Travel is an independent travel agency in Leeds. We plan holidays, city breaks and business trips, and we book flights, hotels, car hire and travel insurance.

Our office
The office at 7 Park Row is open Monday to Friday, 9 am to 5:30 pm, and Saturday 10 am to 2 pm. You can also reach us by phone or by email at any time; we answer emails within one working day. Our emergency line for customers who are already travelling is open around the clock.

Booking a holiday
Tell us where you would like to go, your dates, how many adults and children are travelling, and your budget. We send you a quote within 24 hours. To confirm a package holiday we need a deposit of £200 per person; the balance is due eight weeks before departure. Flights booked on their own must be paid in full at the time of booking.

Changes and cancellations
You can change the names or dates on a booking for a fee of £50 per person, plus any difference in price charged by the airline or hotel. If you cancel more than eight weeks before departure you lose only the deposit. Closer to departure, the cancellation charge rises to the full price of the holiday in the last two weeks. If an airline cancels your flight, we rebook you on the next available flight or give you a full refund.

Baggage
Most of our package holidays include one checked bag of 23 kg per person and a small cabin bag. Extra bags can be added up to 48 hours before the flight. Sports equipment such as golf clubs or skis must be booked in advance.

Passports and visas
Your passport must be valid for at least six months after your return date for many destinations. We tell you which visas you need when you book, but getting them is your responsibility. Travellers to the United States need an approved ESTA before they fly.

Travel insurance
We strongly recommend travel insurance. Our single trip policy starts at £19, and our annual multi-trip policy costs £79 for one person or £129 for a family. It covers medical costs abroad, cancellation, lost luggage and delays.

Popular destinations
This summer our most popular destinations are Spain, Greece, Portugal and Croatia. For winter sun we recommend the Canary Islands, Egypt and Dubai. City breaks to Paris, Rome, Amsterdam and Prague start at £249 per person, including return flights and two nights in a central hotel with breakfast.

Paying
We accept debit and credit cards and bank transfers. Payments by credit card carry no extra charge. All our holidays are protected by ATOL, so your money is safe if a supplier fails.`,
    questions: [
      { text: 'How much do I need to pay to secure my holiday', key: ['pay', 'holiday'] },
      { text: 'What happens if the airline cancels my flight', key: ['airline', 'flight'] },
      { text: 'Can I take my skis on the plane', key: ['skis'] },
      { text: 'How long must my passport be valid', key: ['passport', 'valid'] },
      { text: 'Are you open on Saturday', key: ['saturday'] },
      { text: 'How heavy can my checked bag be', key: ['checked', 'bag'] },
      { text: 'What does the annual insurance cost for my family', key: ['annual', 'family'] },
      { text: 'Where should we go for some sun in winter', key: ['sun', 'winter'] },
      { text: 'Do you charge extra for paying by credit card', key: ['credit', 'card'] },
      { text: 'Can I change the date of my booking', key: ['change', 'date'] },
      { text: 'Is my money protected if the company goes bust', key: ['money', 'protected'] },
      { text: 'How much is a weekend in Rome', key: ['rome'] },
      { text: 'Do I need a visa for America', key: ['visa'] },
      { text: 'When do I have to pay the rest of the money', key: ['pay', 'money'] },
      { text: 'Can I add another bag to my trip', key: ['bag'] },
    ],
  },
  {
    name: 'esim seller',
    document: `NomadSIM sells prepaid eSIM data plans for travellers in more than 150 countries. An eSIM is a digital SIM card: you download it to your phone instead of inserting a plastic card, and you keep your own SIM for calls and texts at home.

Compatible phones
Your phone must support eSIM and must not be locked to a carrier. Most phones made since 2019 support it, including the iPhone XS and newer, Google Pixel 3 and newer, and Samsung Galaxy S20 and newer. To check, dial *#06#: if you see an EID number, your phone supports eSIM.

Plans and prices
Our local plans cover one country, our regional plans cover Europe, Asia or Latin America, and our global plan covers 120 countries. A 1 GB plan for 7 days starts at $4.50, 5 GB for 30 days costs $12, and 20 GB for 30 days costs $29. Plans are data only: they do not include a phone number, calls or SMS, but you can use WhatsApp or FaceTime over data. Using your phone as a hotspot is allowed on all plans.

Installing your eSIM
After you pay, we email you a QR code. Install the eSIM before you leave, while you have a good Wi-Fi connection: open Settings, choose Mobile Data or Connections, then Add eSIM, and scan the code. Each QR code can only be installed once, so do not delete the eSIM after installing it. When you arrive, switch your mobile data to the NomadSIM line and turn on data roaming for it.

Activation and validity
The plan starts when your phone first connects to a supported network at your destination, not when you install it. The validity period, for example 30 days, counts from that moment. You can see your remaining data in the NomadSIM app.

Top ups
If you run out of data, you can buy a top up in the app or on our website without installing a new eSIM. Top ups are added to your existing plan immediately.

Troubleshooting
If you have no internet after you arrive, check that data roaming is on for the eSIM line and restart your phone. If your phone shows "No Service", choose the network manually in the settings. Our support team answers chat messages 24 hours a day, usually within ten minutes.

Refunds
You can get a full refund if the eSIM has not been installed and the plan has not started, within 30 days of purchase. Once the plan has started, we cannot refund unused data. If our network fails and we cannot fix it, we refund you in full.`,
    questions: [
      { text: 'Does my phone work with an eSIM', key: ['phone'] },
      { text: 'How do I know if my phone is locked to a carrier', key: ['locked', 'carrier'] },
      { text: 'Can I make calls with this plan', key: ['calls'] },
      { text: 'How much does the biggest plan cost', key: ['plan', 'cost'] },
      { text: 'When does my plan start counting', key: ['plan', 'start'] },
      { text: 'I lost the code you sent me', key: ['code'] },
      { text: 'Can I share my internet with my laptop', key: ['internet'] },
      { text: 'My data ran out, what do I do now', key: ['data'] },
      { text: 'Do you cover Europe', key: ['europe'] },
      { text: 'I have no service here in Spain', key: ['service'] },
      { text: 'Can I get a refund if I never used it', key: ['refund'] },
      { text: 'Should I switch on roaming', key: ['roaming'] },
      { text: 'Can I buy more data in the app', key: ['data', 'app'] },
      { text: 'Do you have a global plan', key: ['global'] },
      { text: 'Can I use WhatsApp with it', key: ['whatsapp'] },
    ],
  },
];

export interface DomainRow {
  set: string;
  voice: string;
  rate: number;
  mode: 'general' | 'domain';
  questions: number;
  wer: number;
  /** Key words of the questions found (stemmed, as retrieval compares words) in the transcripts. */
  key_words_heard: number | null;
  /** Questions whose key words were all heard. */
  questions_all_keys_heard: number | null;
}

interface QuestionSet {
  name: string;
  corpus: string;
  questions: { text: string; key: string[] }[];
}

/** The key words of `key` whose stem is among the transcript's. */
function heardKeys(key: string[], hypothesis: string): string[] {
  const heard = new Set(terms(hypothesis));
  return key.filter((k) => terms(k).every((t) => heard.has(t)));
}

/**
 * The question sets: the three tenants' held-out questions; the benchmark's older sentences (SENTENCES) with the
 * document of their tenant (no key words); and, if the file is there, SQuAD's Notre Dame article with every 9th of
 * its questions, written by other people for a reading test (key words: those of the question in its passage).
 */
export function domainQuestionSets(squadFile?: string): QuestionSet[] {
  const sets: QuestionSet[] = DOMAIN_TENANTS.map((t) => ({ name: t.name, corpus: t.document, questions: t.questions }));
  const earlier = [SENTENCES.slice(0, 10), SENTENCES.slice(10, 20), SENTENCES.slice(20)];
  DOMAIN_TENANTS.forEach((t, i) =>
    sets.push({ name: `${t.name}, older sentences`, corpus: t.document, questions: earlier[i]!.map((text) => ({ text, key: [] })) }),
  );
  if (squadFile && existsSync(squadFile)) {
    type Squad = { data: { paragraphs: { context: string; qas: { question: string }[] }[] }[] };
    const paragraphs = (JSON.parse(readFileSync(squadFile, 'utf8')) as Squad).data.flatMap((a) => a.paragraphs);
    const all = paragraphs.flatMap((p) => p.qas.map((q) => ({ question: q.question, passage: new Set(terms(p.context)) })));
    const questions = all
      .filter((_, i) => i % 9 === 0)
      .map(({ question, passage }) => ({
        text: question,
        key: [...new Set(normalizeWords(question).filter((w) => terms(w).length > 0 && terms(w).every((t) => passage.has(t))))],
      }));
    sets.push({ name: 'squad notre dame', corpus: paragraphs.map((p) => p.context).join('\n'), questions });
  }
  return sets;
}

/** Each question set through the general model and through a model of its corpus, one stream per set as in a call. */
export async function measureDomain(
  opts: { squadFile?: string; voices?: typeof VOICES; rates?: (8000 | 16000)[]; log?: (line: string) => void } = {},
) {
  const rows: DomainRow[] = [];
  const samples: {
    set: string;
    voice: string;
    rate: number;
    mode: string;
    reference: string;
    hypothesis: string;
    key: string[];
    heard: string[];
  }[] = [];
  const sets = domainQuestionSets(opts.squadFile);
  for (const { voice, wordsPerMinute } of opts.voices ?? VOICES) {
    for (const rate of opts.rates ?? [16000, 8000]) {
      const tts = new EspeakTts({ sampleRate: rate, voice, wordsPerMinute });
      for (const set of sets) {
        const audio = await Promise.all(set.questions.map((q) => speak(tts, q.text)));
        for (const mode of ['general', 'domain'] as const) {
          const stt = new PocketsphinxStt(mode === 'general' ? { sampleRate: rate } : { sampleRate: rate, mode, corpus: set.corpus });
          const { texts } = await transcribe(stt, audio);
          let errors = 0;
          let words = 0;
          let keys = 0;
          let heard = 0;
          let allHeard = 0;
          texts.forEach((hypothesis, i) => {
            const q = set.questions[i]!;
            const e = wordErrors(q.text, hypothesis);
            errors += e.errors;
            words += e.words;
            const got = heardKeys(q.key, hypothesis);
            keys += q.key.length;
            heard += got.length;
            if (got.length === q.key.length) allHeard++;
            samples.push({ set: set.name, voice, rate, mode, reference: q.text, hypothesis, key: q.key, heard: got });
          });
          const keyed = keys > 0;
          const row: DomainRow = {
            set: set.name,
            voice,
            rate,
            mode,
            questions: texts.length,
            wer: round(errors / words),
            key_words_heard: keyed ? round(heard / keys) : null,
            questions_all_keys_heard: keyed ? round(allHeard / texts.length) : null,
          };
          rows.push(row);
          opts.log?.(
            `  ${set.name}, ${voice} ${rate} Hz ${mode}: WER ${row.wer}${keyed ? `, key words heard ${row.key_words_heard}` : ''}`,
          );
        }
      }
    }
  }
  return { rows, samples };
}

/**
 * Building a domain model (first time in the process: the dictionary read, the model written) and the engine with
 * it: load time (a stream opened and closed at once) and peak memory over one sentence; for each tenant's document,
 * and for a corpus of `words` words (the documents, the SQuAD article and the READMEs of node_modules, in order).
 */
export async function measureDomainBuild(opts: { words?: number; squadFile?: string; log?: (line: string) => void } = {}) {
  const target = opts.words ?? 50_000;
  const texts = DOMAIN_TENANTS.map((t) => t.document);
  if (opts.squadFile && existsSync(opts.squadFile)) texts.push(...domainQuestionSets(opts.squadFile).at(-1)!.corpus.split('\n'));
  const modules = path.resolve('node_modules');
  for (const dir of existsSync(modules) ? readdirSync(modules).sort() : []) {
    const readme = path.join(modules, dir, 'README.md');
    // Prose only: code blocks would be mostly words the dictionary does not know.
    if (existsSync(readme)) texts.push(readFileSync(readme, 'utf8').replace(/```[\s\S]*?```/g, ''));
  }
  let big = '';
  for (const text of texts) {
    if (normalizeWords(big).length >= target) break;
    big += `${text}\n`;
  }
  big =
    normalizeWords(big).length > target
      ? big
          .split(/(?<=\s)/)
          .slice(0, target)
          .join('')
      : big;
  const tts = new EspeakTts({ sampleRate: 8000, ...VOICES[0]! });
  const sentence = await speak(tts, DOMAIN_TENANTS[0]!.questions[0]!.text);
  const rows = [];
  for (const [name, corpus] of [
    ['general model', undefined],
    ...DOMAIN_TENANTS.map((t) => [t.name, t.document]),
    [`${target / 1000}k words`, big],
  ] as const) {
    const words = corpus === undefined ? null : normalizeWords(corpus).length;
    const started = performance.now();
    // A line end more: a model not built yet in this process, the same files.
    const stt = new PocketsphinxStt(
      corpus === undefined ? { sampleRate: 8000 } : { sampleRate: 8000, mode: 'domain', corpus: `${corpus}\n` },
    );
    const outOfVocabulary = stt.outOfVocabulary.length;
    const buildMs = corpus === undefined ? null : Math.round(performance.now() - started);
    const loadStarted = performance.now();
    await stt.stream({}).close();
    const loadMs = Math.round(performance.now() - loadStarted);
    const { engineRssMb } = await transcribe(stt, [sentence]);
    rows.push({
      corpus: name,
      words,
      out_of_vocabulary: corpus === undefined ? null : outOfVocabulary,
      build_ms: buildMs,
      engine_load_ms: loadMs,
      engine_rss_mb: Math.round(engineRssMb),
    });
    opts.log?.(`  ${name}: build ${buildMs ?? '-'} ms, load ${loadMs} ms, RSS ${Math.round(engineRssMb)} MB`);
  }
  return rows;
}

// ---- the whole benchmark ---------------------------------------------------------------------------------------

export async function runLocalSttBench(
  opts: { fsddDir?: string; squadFile?: string; latencySentences?: number; log?: (line: string) => void } = {},
) {
  const log = opts.log ?? (() => {});
  log('(a) word error rate, espeak-ng sentences');
  const werResult = await measureWer({ log });
  let digits: Awaited<ReturnType<typeof measureDigits>> | undefined;
  if (opts.fsddDir && existsSync(opts.fsddDir)) {
    log('(b) Free Spoken Digit Dataset');
    digits = await measureDigits(opts.fsddDir, { log });
  } else log(`(b) skipped: no FSDD recordings at ${opts.fsddDir ?? '(none given)'}`);
  log('(c) latency, audio in real time');
  const latencySentences = SENTENCES.slice(0, opts.latencySentences ?? 8);
  const latency: LatencyRow[] = [];
  for (const [rate, trigger] of [
    [16000, 'flush'],
    [8000, 'flush'],
    [16000, 'endpoint'],
  ] as const) {
    latency.push(await measureLatency({ rate, trigger, sentences: latencySentences }));
    log(`  ${rate} Hz ${trigger}: p50 ${latency[latency.length - 1]!.p50_ms} ms`);
  }
  const pins = ['four one two', 'nine eight seven six', 'two oh one nine', 'five five three', 'one two three four', 'seven zero eight'];
  latency.push(await measureLatency({ rate: 8000, mode: 'digits', trigger: 'flush', sentences: pins }));
  const domain = await runDomainSection(opts);
  return {
    wer: werResult.rows,
    digits: digits?.rows ?? [],
    latency,
    ...domain,
    samples: werResult.samples,
    digit_confusions: digits?.confusions ?? {},
  };
}

/** (d) alone. */
export async function runDomainSection(opts: { squadFile?: string; log?: (line: string) => void } = {}) {
  const log = opts.log ?? (() => {});
  // The builds first: the first one also reads the general model's word frequencies (once per process).
  log('(d) building domain models, loading the engine');
  const domain_build = await measureDomainBuild({ squadFile: opts.squadFile, log });
  log('    domain model vs general model, questions the corpus does not contain');
  const { rows, samples } = await measureDomain({ squadFile: opts.squadFile, log });
  return { domain: rows, domain_build, domain_samples: samples };
}

function table(rows: object[]): string {
  if (rows.length === 0) return '(none)';
  const cols = Object.keys(rows[0]!);
  return [
    `| ${cols.join(' | ')} |`,
    `|${cols.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${cols.map((c) => String((r as Record<string, unknown>)[c])).join(' | ')} |`),
  ].join('\n');
}

function printDomain(d: Awaited<ReturnType<typeof runDomainSection>>): void {
  console.log('\nDomain model vs general model on questions not in the corpus (espeak-ng, both voices pooled per row)\n');
  const pooled = new Map<string, { set: string; rate: number; mode: string; wer: number[]; keys: (number | null)[] }>();
  for (const r of d.domain) {
    const k = `${r.set}|${r.rate}|${r.mode}`;
    const p = pooled.get(k) ?? { set: r.set, rate: r.rate, mode: r.mode, wer: [], keys: [] };
    p.wer.push(r.wer);
    p.keys.push(r.key_words_heard);
    pooled.set(k, p);
  }
  const mean = (xs: number[]) => round(xs.reduce((a, b) => a + b, 0) / xs.length);
  console.log(
    table(
      [...pooled.values()].map((p) => ({
        set: p.set,
        rate: p.rate,
        mode: p.mode,
        wer: mean(p.wer),
        key_words_heard: p.keys[0] === null ? '-' : mean(p.keys as number[]),
      })),
    ),
  );
  console.log('\nBuilding a domain model; the engine with it (8 kHz)\n');
  console.log(table(d.domain_build));
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const args = new Map<string, string>();
  for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
  const out = args.get('out') ?? 'bench/results/local-stt.json';
  const started = performance.now();
  const squadFile = args.get('squad') ?? SQUAD_FILE;
  const log = (line: string) => console.error(line);
  if (args.get('only') === 'domain') {
    const domain = await runDomainSection({ squadFile, log });
    printDomain(domain);
    const previous = existsSync(out) ? (JSON.parse(readFileSync(out, 'utf8')) as Record<string, unknown>) : {};
    const environment = {
      node: process.version,
      cpus: os.cpus().length,
      cpu: os.cpus()[0]?.model,
      date: new Date().toISOString(),
      seconds: Math.round((performance.now() - started) / 1000),
    };
    writeFileSync(out, `${JSON.stringify({ ...previous, ...domain, domain_environment: environment }, null, 2)}\n`);
    console.log(`\nJSON: ${out}`);
    process.exit(0);
  }
  const result = await runLocalSttBench({
    fsddDir: args.get('fsdd') ?? FSDD_DIR,
    squadFile,
    latencySentences: Number(args.get('latency-sentences') ?? 8),
    log,
  });
  console.log('\nLocal STT (pocketsphinx 5prealpha, en-us model), word error rate on espeak-ng sentences\n');
  console.log(table(result.wer));
  console.log('\nFree Spoken Digit Dataset (8 kHz, real speakers): the recognized digits equal the label\n');
  console.log(table(result.digits));
  console.log('\nLatency from the end of speech to the final, audio paced in real time\n');
  console.log(table(result.latency));
  printDomain(result);
  mkdirSync(path.dirname(out), { recursive: true });
  const environment = {
    node: process.version,
    cpus: os.cpus().length,
    cpu: os.cpus()[0]?.model,
    date: new Date().toISOString(),
    seconds: Math.round((performance.now() - started) / 1000),
  };
  writeFileSync(out, `${JSON.stringify({ environment, ...result }, null, 2)}\n`);
  console.log(`\nJSON: ${out}`);
}
