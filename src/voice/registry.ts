// Provider choice is data: the tenant's settings name the engines, this turns them into instances. Every chain
// ends with a local engine, so a call goes on when a cloud provider fails or has no key.
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { ProviderError } from '../lib/provider-error.js';
import { Semaphore } from '../lib/semaphore.js';
import type { Embedder } from '../rag/embedders/embedder.js';
import type { Retriever } from '../rag/retriever.js';
import type { AgentOverrides, ProviderKeyName, ProviderSettings, SettingsService, TenantSettingsView, TenantTool } from '../services/settings.js';
import { Agent, type KnowledgeSearch } from './agent.js';
import type { CallBehaviour } from './call-session.js';
import { AnthropicLlm } from './llm/anthropic-llm.js';
import { FallbackLlm } from './llm/fallback-llm.js';
import type { LLM } from './llm/llm.js';
import { LocalResponder } from './llm/local-responder.js';
import { OpenAiLlm } from './llm/openai-llm.js';
import { DeepgramStt } from './stt/deepgram-stt.js';
import { FallbackStt } from './stt/fallback-stt.js';
import { PocketsphinxStt } from './stt/pocketsphinx-stt.js';
import type { STT } from './stt/stt.js';
import { HttpTool, type HttpToolRuntime } from './tools/http-tool.js';
import { ElevenLabsTts } from './tts/elevenlabs-tts.js';
import { EspeakTts } from './tts/espeak-tts.js';
import { FallbackTts } from './tts/fallback-tts.js';
import type { TTS } from './tts/tts.js';
import { EnergyVad } from './vad/energy-vad.js';
import { SileroVad } from './vad/silero-vad.js';
import type { VAD } from './vad/vad.js';

export interface TenantAgent {
  agent: Agent;
  settings: TenantSettingsView;
}

/** Everything a call needs besides its transport. */
export interface VoiceParts extends TenantAgent {
  stt: STT;
  tts: TTS;
  vad: VAD;
  behaviour: CallBehaviour;
}

/** Told when a provider failed and the next one in its chain took over. */
export type FallbackListener = (stage: 'stt' | 'llm' | 'tts', provider: string, err: unknown) => void;

export type PlatformProviders = Config['providerKeys'] & {
  openaiBaseUrl?: string;
  anthropicBaseUrl?: string;
  deepgramBaseUrl?: string;
  elevenlabsBaseUrl?: string;
  /** espeak-ng processes run at once by this instance (LOCAL_TTS_CONCURRENCY). */
  localTtsConcurrency?: number;
};
const DEFAULT_LOCAL_TTS_CONCURRENCY = 4;

type Keys = Partial<Record<ProviderKeyName, string>>;

/** ElevenLabs' premade voice "Rachel", for a tenant that chose ElevenLabs without naming a voice. */
const DEFAULT_ELEVENLABS_VOICE = '21m00Tcm4TlvDq8ikWAM';
const ELEVENLABS_RATES = [8000, 16000, 22050, 24000] as const;

/**
 * How much of a tenant's knowledge goes into the local STT's domain language model. Building it runs on the event
 * loop once per knowledge version (bench:local-stt: ~50 ms for a typical tenant, ~460 ms for 50k words).
 */
const DOMAIN_CORPUS_MAX_CHARS = 200_000;

export class ProviderRegistry {
  private readonly local = new LocalResponder();
  /** Per tenant, the knowledge the local STT's domain model was last built from. */
  private readonly corpora = new Map<string, { version: string; text: string }>();
  /** Every call's espeak-ng processes share these: a bounded number per instance. */
  private readonly espeakSlots: Semaphore;

  constructor(
    private readonly settings: SettingsService,
    private readonly retriever: Retriever,
    private readonly platform: PlatformProviders,
    private readonly log: FastifyBaseLogger,
    private readonly toolRuntime: HttpToolRuntime,
  ) {
    this.espeakSlots = new Semaphore(platform.localTtsConcurrency ?? DEFAULT_LOCAL_TTS_CONCURRENCY);
  }

  async agentFor(tenantId: string, onFallback?: FallbackListener): Promise<TenantAgent> {
    const { settings, keys, tools } = await this.settings.forProviders(tenantId);
    return { agent: this.agent(tenantId, settings, keys, tools, onFallback), settings };
  }

  /** The tenant's agent and engines for a call whose audio runs at `sampleRate`. */
  async voiceFor(tenantId: string, opts: { sampleRate: number; onFallback?: FallbackListener; overrides?: AgentOverrides }): Promise<VoiceParts> {
    const stored = await this.settings.forProviders(tenantId);
    const { keys, tools } = stored;
    const settings: TenantSettingsView = { ...stored.settings, ...opts.overrides };
    const notify = opts.onFallback ?? (() => {});
    const call = settings.call;
    return {
      agent: this.agent(tenantId, settings, keys, tools, opts.onFallback),
      settings,
      stt: this.stt(tenantId, settings.providers.stt, keys, opts.sampleRate, notify, await this.domainCorpus(tenantId, settings.providers.stt)),
      tts: this.tts(tenantId, settings.providers.tts, keys, opts.sampleRate, notify),
      vad: call.vad === 'energy' ? new EnergyVad() : new SileroVad({ offThread: true }),
      behaviour: {
        greeting: settings.greeting,
        endpointingMs: call.endpointing_ms,
        minInterruptionMs: call.min_interruption_ms,
        silencePromptMs: call.silence_prompt_s * 1000,
        maxDurationMs: call.max_duration_s * 1000,
      },
    };
  }

  private agent(tenantId: string, settings: TenantSettingsView, keys: Keys, tools: TenantTool[], onFallback?: FallbackListener): Agent {
    const llm = this.llm(settings.providers.llm, keys, tenantId, onFallback);
    // Resolved at the first search and kept for the agent's life (a call): each search is then one query.
    let embedder: Promise<Embedder> | undefined;
    const search: KnowledgeSearch = async (query) => {
      if (!settings.rag.enabled) return [];
      // A failure (a missing key, say) is not kept: the next search asks again.
      embedder ??= this.retriever.embedderFor(tenantId).catch((err: unknown) => {
        embedder = undefined;
        throw err;
      });
      const hits = await this.retriever.search(tenantId, query, { topK: settings.rag.top_k, minScore: settings.rag.min_score, embedder: await embedder });
      return hits.map((h) => ({ chunkId: h.chunkId, documentTitle: h.documentTitle, text: h.text, score: h.score }));
    };
    return new Agent(
      llm,
      search,
      { agentName: settings.agent_name, systemPrompt: settings.system_prompt, transferNumber: settings.call.transfer_number },
      tools.map((t) => new HttpTool(tenantId, t, this.toolRuntime)),
    );
  }

  private llm(choice: ProviderSettings['llm'], keys: Keys, tenantId: string, onFallback?: FallbackListener): LLM {
    if (choice.provider === 'local') return this.local;
    let primary: LLM;
    try {
      primary = this.cloudLlm(choice, keys);
    } catch (err) {
      this.log.warn({ tenantId, provider: choice.provider, err }, 'LLM not usable (settings or key); falling back to the local responder');
      return this.local;
    }
    return new FallbackLlm([primary, this.local], (failed, err) => {
      this.log.warn({ tenantId, provider: failed.provider, err }, 'LLM failed before answering; falling back');
      onFallback?.('llm', failed.provider, err);
    });
  }

  private cloudLlm(choice: ProviderSettings['llm'], keys: Keys): LLM {
    switch (choice.provider) {
      case 'local':
        return this.local;
      case 'openai': {
        const apiKey = keys.openai ?? this.platform.openai;
        if (!apiKey) throw new ProviderError('openai', 'no OpenAI API key configured', false);
        return new OpenAiLlm({ apiKey, model: choice.model, baseURL: this.platform.openaiBaseUrl });
      }
      case 'openai_compatible':
        if (!choice.base_url) throw new ProviderError('openai_compatible', 'providers.llm.base_url is required for an OpenAI-compatible server', false);
        // Local servers (Ollama, vLLM, llama.cpp) usually take any key.
        // The tenant chose this URL: it goes through the outbound guard (no private networks, no redirects).
        return new OpenAiLlm({
          apiKey: keys.openai_compatible ?? 'none',
          model: choice.model ?? 'default',
          baseURL: choice.base_url,
          provider: 'openai_compatible',
          fetch: this.toolRuntime.outbound.fetch,
        });
      case 'anthropic': {
        const apiKey = keys.anthropic ?? this.platform.anthropic;
        if (!apiKey) throw new ProviderError('anthropic', 'no Anthropic API key configured', false);
        return new AnthropicLlm({ apiKey, model: choice.model, baseURL: this.platform.anthropicBaseUrl });
      }
    }
  }

  /** The text the local STT's domain model is built from; '' for the general model. */
  private async domainCorpus(tenantId: string, choice: ProviderSettings['stt']): Promise<string> {
    if (choice.local_model !== 'domain') return '';
    const known = this.corpora.get(tenantId);
    const { version, text } = await this.retriever.corpus(tenantId, DOMAIN_CORPUS_MAX_CHARS, known?.version);
    if (text === undefined) return known!.text;
    this.corpora.set(tenantId, { version, text });
    return text;
  }

  /** Deepgram when chosen and keyed, then pocketsphinx; both at 8 kHz for phone lines, 16 kHz otherwise. */
  private stt(tenantId: string, choice: ProviderSettings['stt'], keys: Keys, lineRate: number, notify: FallbackListener, corpus: string): STT {
    const sampleRate = lineRate <= 8000 ? 8000 : 16000;
    const local = new PocketsphinxStt(corpus.trim() ? { sampleRate, mode: 'domain', corpus } : { sampleRate });
    if (choice.provider === 'local') return local;
    const apiKey = keys.deepgram ?? this.platform.deepgram;
    if (!apiKey) {
      this.log.warn({ tenantId }, 'Deepgram chosen but no key configured; using the local speech-to-text');
      return local;
    }
    const deepgram = new DeepgramStt({ apiKey, sampleRate, model: choice.model, language: choice.language, baseUrl: this.platform.deepgramBaseUrl });
    return new FallbackStt([deepgram, local], (failed, err) => {
      this.log.warn({ tenantId, provider: failed.provider, err }, 'STT failed; the next engine took over');
      notify('stt', failed.provider, err);
    });
  }

  /** ElevenLabs when chosen and keyed, then espeak-ng, both at the rate ElevenLabs can give nearest the line's. */
  private tts(tenantId: string, choice: ProviderSettings['tts'], keys: Keys, lineRate: number, notify: FallbackListener): TTS {
    const sampleRate = ELEVENLABS_RATES.find((r) => r >= lineRate) ?? 24000;
    const local = new EspeakTts({ sampleRate, voice: choice.provider === 'local' ? choice.voice : undefined, slots: this.espeakSlots });
    if (choice.provider === 'local') return local;
    const apiKey = keys.elevenlabs ?? this.platform.elevenlabs;
    if (!apiKey) {
      this.log.warn({ tenantId }, 'ElevenLabs chosen but no key configured; using the local text-to-speech');
      return local;
    }
    const elevenlabs = new ElevenLabsTts({ apiKey, sampleRate, voiceId: choice.voice ?? DEFAULT_ELEVENLABS_VOICE, model: choice.model, baseUrl: this.platform.elevenlabsBaseUrl });
    return new FallbackTts([elevenlabs, local], (failed, err) => {
      this.log.warn({ tenantId, provider: failed.provider, err }, 'TTS failed; the next engine took over');
      notify('tts', failed.provider, err);
    });
  }
}
