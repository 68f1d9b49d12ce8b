// The cloud providers for bench:calls, in a process of their own: the wire-protocol fakes of Deepgram (live STT
// websocket), OpenAI (streamed chat completions) and ElevenLabs (streamed TTS) with realistic latencies, so their
// CPU is not counted as the service's or the simulator's. Prints one JSON line (URLs and keys) on stdout, then
// runs until its stdin closes (the benchmark ended, however it ended).
//   npx tsx bench/provider-fakes.ts [--stt-final-ms 250] [--llm-first-token-ms 400] [--llm-tokens-per-s 50]
//     [--tts-first-byte-ms 200] [--transcripts '["What callers say", ...]'] [--reply 'What the model answers.']
import { FakeDeepgram } from '../test/fakes/deepgram.js';
import { FakeElevenLabs } from '../test/fakes/elevenlabs.js';
import { FakeOpenAI } from '../test/fakes/openai.js';

export interface ProviderFakesInfo {
  deepgram: { url: string; apiKey: string };
  openai: { baseURL: string; apiKey: string };
  elevenlabs: { baseUrl: string; apiKey: string; voiceId: string };
  pid: number;
}

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const num = (name: string, def: number) => Number(args.get(name) ?? def);
const TRANSCRIPTS = JSON.parse(args.get('transcripts') ?? '["Hello?"]') as string[];
const REPLY = args.get('reply') ?? 'Sure. Anything else?';

/** Deepgram's answers cycle through the questions for every connection (one transcript per utterance). */
class BenchDeepgram extends FakeDeepgram {
  private said = 0;
  override nextTranscript(): string {
    return TRANSCRIPTS[this.said++ % TRANSCRIPTS.length]!;
  }
}

const deepgram = await new BenchDeepgram({ finalLatencyMs: num('stt-final-ms', 250) }).start();
const openai = await new FakeOpenAI().start();
// Time to the first streamed piece, then one piece every 1000 / tokens-per-s ms (the fake streams a word per piece:
// counted as one token, as bench:voice does).
openai.delayMs = num('llm-first-token-ms', 400);
openai.chunkDelayMs = 1000 / num('llm-tokens-per-s', 50);
openai.chatScript = () => ({ text: REPLY });
const elevenlabs = await new FakeElevenLabs().start();
elevenlabs.firstByteMs = num('tts-first-byte-ms', 200);
// The fakes keep every request for tests' assertions; a long benchmark does not need them.
const forget = setInterval(() => {
  deepgram.connections.length = 0;
  openai.chatRequests.length = 0;
  openai.requests.length = 0;
  elevenlabs.requests.length = 0;
}, 5000);

const info: ProviderFakesInfo = {
  deepgram: { url: deepgram.url, apiKey: deepgram.apiKey },
  openai: { baseURL: openai.baseURL, apiKey: openai.apiKey },
  elevenlabs: { baseUrl: elevenlabs.baseUrl, apiKey: elevenlabs.apiKey, voiceId: elevenlabs.voiceId },
  pid: process.pid,
};
console.log(JSON.stringify(info));

process.stdin.resume();
process.stdin.on('end', () => {
  clearInterval(forget);
  void Promise.allSettled([deepgram.close(), openai.stop(), elevenlabs.stop()]).then(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
});
