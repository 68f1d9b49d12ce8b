// The engine table: one row per engine (its kind, the vendor whose key it needs, the sample rates it works at, how
// to make it). The settings' engine names and provider key names are derived from it; the registries
// (voice/registry.ts, rag/embedders/registry.ts) make engines from it. Adding an engine is one row here.
import type { Semaphore } from '../lib/semaphore.js';
import type { Embedder } from '../rag/embedders/embedder.js';
import { LocalEmbedder } from '../rag/embedders/local-embedder.js';
import { OpenAIEmbedder } from '../rag/embedders/openai-embedder.js';
import { AnthropicLlm } from '../voice/llm/anthropic-llm.js';
import type { LLM } from '../voice/llm/llm.js';
import { LocalResponder } from '../voice/llm/local-responder.js';
import { OpenAiLlm } from '../voice/llm/openai-llm.js';
import { DeepgramStt } from '../voice/stt/deepgram-stt.js';
import { PocketsphinxStt } from '../voice/stt/pocketsphinx-stt.js';
import type { STT } from '../voice/stt/stt.js';
import { ElevenLabsTts } from '../voice/tts/elevenlabs-tts.js';
import { EspeakTts } from '../voice/tts/espeak-tts.js';
import type { TTS } from '../voice/tts/tts.js';
import { ProviderError } from '../lib/provider-error.js';
import { VENDORS, type VendorName } from './vendors.js';

export type EngineKind = 'stt' | 'tts' | 'llm' | 'embeddings';
export type AudioKind = 'stt' | 'tts';

/** What each kind makes. */
export interface Products {
  stt: STT;
  tts: TTS;
  llm: LLM;
  embeddings: Embedder;
}

/**
 * The tenant's settings for a kind besides the engine's name (services/settings.ts validates them). An engine
 * standing in as a fallback gets `{}`: these fields name things of the chosen engine (an ElevenLabs voice id is no
 * espeak-ng voice).
 */
export interface Choices {
  stt: { model?: string; language?: string };
  tts: { model?: string; voice?: string };
  llm: { model?: string; base_url?: string };
  embeddings: { model?: string; dimensions?: number };
}

export interface BaseContext<K extends EngineKind> {
  choice: Choices[K];
  /** The tenant's key, else the platform's (vendors.ts `resolveKey`); '' for an engine that needs none. */
  apiKey: string;
  /** Where the vendor's API is, as the platform configured it; undefined: the vendor's own. */
  baseUrl: string | undefined;
}

/** What an engine is made from, per kind; `Rate` is one of the row's sample rates. */
export interface Contexts<Rate extends number = number> {
  stt: BaseContext<'stt'> & { sampleRate: Rate; /** The local STT's domain text; '' for the general model. */ corpus: string };
  tts: BaseContext<'tts'> & {
    sampleRate: Rate;
    /** Every call's espeak-ng processes share these (LOCAL_TTS_CONCURRENCY). */ localTtsSlots: Semaphore;
  };
  llm: BaseContext<'llm'> & { /** The outbound guard's fetch, for a server the tenant chose. */ outboundFetch: typeof fetch };
  embeddings: BaseContext<'embeddings'>;
}

export interface Engine<K extends EngineKind = EngineKind> {
  kind: K;
  /** The name the settings use (`providers.<kind>.provider`). */
  name: string;
  /** Whose key it needs; none: it runs here, needs nothing, and ends every chain of its kind. */
  vendor?: VendorName;
  /** STT and TTS: the rates it works at, ascending. Each engine of a chain runs at its own; chains resample. */
  sampleRates?: readonly number[];
  create(ctx: Contexts[K]): Products[K];
}

/** A speech engine's row: `sampleRates` required, and `create` gets one of them. */
function audioEngine<const K extends AudioKind, const N extends string, const R extends number, const V extends VendorName = never>(row: {
  kind: K;
  name: N;
  vendor?: V;
  sampleRates: readonly [R, ...R[]];
  create(ctx: Contexts<R>[K]): Products[K];
}) {
  return row;
}

function textEngine<const K extends Exclude<EngineKind, AudioKind>, const N extends string, const V extends VendorName = never>(row: {
  kind: K;
  name: N;
  vendor?: V;
  create(ctx: Contexts[K]): Products[K];
}) {
  return row;
}

/** ElevenLabs' premade voice "Rachel", for a tenant that chose ElevenLabs without naming a voice. */
const DEFAULT_ELEVENLABS_VOICE = '21m00Tcm4TlvDq8ikWAM';

/** Every engine. Per kind, the first row is the default and the one without a vendor ends every chain. */
export const ENGINES = [
  audioEngine({
    kind: 'stt',
    name: 'local',
    // Its model is 16 kHz; 8 kHz phone audio is upsampled inside, as the phone gives it.
    sampleRates: [8000, 16000],
    create: (c) =>
      new PocketsphinxStt(c.corpus.trim() ? { sampleRate: c.sampleRate, mode: 'domain', corpus: c.corpus } : { sampleRate: c.sampleRate }),
  }),
  audioEngine({
    kind: 'stt',
    name: 'deepgram',
    vendor: 'deepgram',
    // Deepgram takes any rate: the phone's, else wideband.
    sampleRates: [8000, 16000],
    create: (c) =>
      new DeepgramStt({
        apiKey: c.apiKey,
        sampleRate: c.sampleRate,
        model: c.choice.model,
        language: c.choice.language,
        baseUrl: c.baseUrl,
      }),
  }),

  audioEngine({
    kind: 'tts',
    name: 'local',
    // espeak-ng speaks at 22050 Hz and each sentence is resampled once to the rate asked for; above 24 kHz the call
    // resamples (what it has always done).
    sampleRates: [8000, 16000, 22050, 24000],
    create: (c) => new EspeakTts({ sampleRate: c.sampleRate, voice: c.choice.voice, slots: c.localTtsSlots }),
  }),
  audioEngine({
    kind: 'tts',
    name: 'elevenlabs',
    vendor: 'elevenlabs',
    // Its output formats: ulaw_8000, pcm_16000, pcm_22050, pcm_24000.
    sampleRates: [8000, 16000, 22050, 24000],
    create: (c) =>
      new ElevenLabsTts({
        apiKey: c.apiKey,
        sampleRate: c.sampleRate,
        voiceId: c.choice.voice ?? DEFAULT_ELEVENLABS_VOICE,
        model: c.choice.model,
        baseUrl: c.baseUrl,
      }),
  }),

  textEngine({ kind: 'llm', name: 'local', create: () => new LocalResponder() }),
  textEngine({
    kind: 'llm',
    name: 'openai',
    vendor: 'openai',
    create: (c) => new OpenAiLlm({ apiKey: c.apiKey, model: c.choice.model, baseURL: c.baseUrl }),
  }),
  textEngine({
    kind: 'llm',
    name: 'anthropic',
    vendor: 'anthropic',
    create: (c) => new AnthropicLlm({ apiKey: c.apiKey, model: c.choice.model, baseURL: c.baseUrl }),
  }),
  textEngine({
    kind: 'llm',
    name: 'openai_compatible',
    vendor: 'openai_compatible',
    create: (c) => {
      if (!c.choice.base_url)
        throw new ProviderError('openai_compatible', 'providers.llm.base_url is required for an OpenAI-compatible server', false);
      // Local servers (Ollama, vLLM, llama.cpp) usually take any key.
      // The tenant chose this URL: it goes through the outbound guard (no private networks, no redirects).
      return new OpenAiLlm({
        apiKey: c.apiKey || 'none',
        model: c.choice.model ?? 'default',
        baseURL: c.choice.base_url,
        provider: 'openai_compatible',
        fetch: c.outboundFetch,
      });
    },
  }),

  textEngine({ kind: 'embeddings', name: 'local', create: () => new LocalEmbedder() }),
  textEngine({
    kind: 'embeddings',
    name: 'openai',
    vendor: 'openai',
    create: (c) => new OpenAIEmbedder({ apiKey: c.apiKey, model: c.choice.model, dimensions: c.choice.dimensions, baseURL: c.baseUrl }),
  }),
] as const;

type Row = (typeof ENGINES)[number];
/** The engine names of a kind, as the settings accept them. */
export type EngineName<K extends EngineKind> = Extract<Row, { kind: K }>['name'];
/** The names of provider keys a tenant may set: every vendor some engine needs. */
export type ProviderKeyName = NonNullable<Row['vendor']>;

const namesOf = <K extends EngineKind>(kind: K) =>
  ENGINES.filter((e) => e.kind === kind).map((e) => e.name) as [EngineName<K>, ...EngineName<K>[]];

/** Per kind, the engine names (for `z.enum`); the first is the default. */
export const ENGINE_NAMES = { stt: namesOf('stt'), tts: namesOf('tts'), llm: namesOf('llm'), embeddings: namesOf('embeddings') } as const;

/** In the vendor list's order. */
export const PROVIDER_KEY_NAMES = (Object.keys(VENDORS) as VendorName[]).filter((v): v is ProviderKeyName =>
  ENGINES.some((e) => 'vendor' in e && e.vendor === v),
);

/** The row of an engine named in the settings. */
export function engineOf<K extends EngineKind>(kind: K, name: string): Engine<K> | undefined {
  // Each row's `create` takes its own narrower context (one of its rates): callers pass a rate from `rateFor`.
  return (ENGINES as readonly Engine[]).find((e) => e.kind === kind && e.name === name) as Engine<K> | undefined;
}

/** The engine of a kind that runs here without a key: the end of every chain. */
export function localEngineOf<K extends EngineKind>(kind: K): Engine<K> {
  const local = (ENGINES as readonly Engine[]).find((e) => e.kind === kind && e.vendor === undefined);
  if (!local) throw new Error(`no local ${kind} engine in the table`);
  return local as Engine<K>;
}

/** The rate an engine runs at for a line at `lineRate`: its lowest at or above the line's, else its highest. */
export function rateFor(engine: Engine<AudioKind>, lineRate: number): number {
  const rates = engine.sampleRates ?? [];
  const rate = rates.find((r) => r >= lineRate) ?? rates.at(-1);
  if (rate === undefined) throw new Error(`${engine.kind} engine ${engine.name} declares no sample rates`);
  return rate;
}
