// Provider choice is data: the tenant's settings name the engines, this turns them into instances. Every chain
// ends with a local engine, so a call goes on when a cloud provider fails or has no key.
import type { FastifyBaseLogger } from 'fastify';
import { Semaphore } from '../lib/semaphore.js';
import {
  type BaseContext,
  type Choices,
  type Engine,
  type EngineKind,
  engineOf,
  localEngineOf,
  type Products,
  type ProviderKeyName,
  rateFor,
} from '../providers/engines.js';
import { credentialFor, keyOwner as billedTo, type PlatformCredentials, VENDORS } from '../providers/vendors.js';
import type { Embedder } from '../rag/embedders/embedder.js';
import type { EmbedderRegistry } from '../rag/embedders/registry.js';
import type { Retriever } from '../rag/retriever.js';
import { type CallVariables, fillVariables } from '../lib/call-input.js';
import type { AgentOverrides, ProviderSettings, SettingsService, TenantSettingsView, TenantTool } from '../services/settings.js';
import { Agent, type KnowledgeSearch } from './agent.js';
import type { CallBehaviour } from './call-session.js';
import { FallbackLlm } from './llm/fallback-llm.js';
import type { LLM } from './llm/llm.js';
import { FallbackStt } from './stt/fallback-stt.js';
import type { STT } from './stt/stt.js';
import { HttpTool, type HttpToolRuntime } from './tools/http-tool.js';
import { FallbackTts } from './tts/fallback-tts.js';
import type { TTS } from './tts/tts.js';
import { EnergyVad } from './vad/energy-vad.js';
import { SileroVad } from './vad/silero-vad.js';
import type { VAD } from './vad/vad.js';
import { type BilledTo, meteredEmbedder, meteredLlm, meteredStt, meteredTts, type UsageMeter } from './usage-meter.js';

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

export interface PlatformProviders {
  /** The platform's key and base URL per vendor (config.ts). */
  credentials: PlatformCredentials;
  /** espeak-ng processes run at once by this instance (LOCAL_TTS_CONCURRENCY). */
  localTtsConcurrency?: number;
}
const DEFAULT_LOCAL_TTS_CONCURRENCY = 4;

type Keys = Partial<Record<ProviderKeyName, string>>;

/** How the logs name the local engine that takes over. */
const LOCAL_WORDS: Record<Exclude<EngineKind, 'embeddings'>, string> = { stt: 'speech-to-text', tts: 'text-to-speech', llm: 'responder' };

/**
 * How much of a tenant's knowledge goes into the local STT's domain language model. Building it runs on the event
 * loop once per knowledge version (bench:local-stt: ~50 ms for a typical tenant, ~460 ms for 50k words).
 */
const DOMAIN_CORPUS_MAX_CHARS = 200_000;

export class ProviderRegistry {
  /** Per tenant, the knowledge the local STT's domain model was last built from. */
  private readonly corpora = new Map<string, { version: string; text: string }>();
  /** Every call's espeak-ng processes share these: a bounded number per instance. */
  private readonly espeakSlots: Semaphore;

  constructor(
    private readonly settings: SettingsService,
    private readonly retriever: Retriever,
    /** The knowledge search's embedder, made from the settings a call has read already. */
    private readonly embedders: Pick<EmbedderRegistry, 'of'>,
    private readonly platform: PlatformProviders,
    private readonly log: FastifyBaseLogger,
    private readonly toolRuntime: HttpToolRuntime,
  ) {
    this.espeakSlots = new Semaphore(platform.localTtsConcurrency ?? DEFAULT_LOCAL_TTS_CONCURRENCY);
  }

  /** `meter`: where the agent's LLM tokens and query embeddings are counted (a chat session's). */
  async agentFor(tenantId: string, onFallback?: FallbackListener, meter?: UsageMeter): Promise<TenantAgent> {
    const { settings, keys, tools } = await this.settings.forProviders(tenantId);
    return { agent: this.agent(tenantId, settings, keys, tools, onFallback, meter), settings };
  }

  /** The tenant's agent and engines for a call whose audio runs at `sampleRate`. */
  async voiceFor(
    tenantId: string,
    opts: {
      sampleRate: number;
      onFallback?: FallbackListener;
      overrides?: AgentOverrides;
      meter?: UsageMeter;
      /** The call's `{{name}}` values, filled into its prompt and greeting (lib/call-input.ts). */
      variables?: CallVariables;
    },
  ): Promise<VoiceParts> {
    const stored = await this.settings.forProviders(tenantId);
    const { keys, tools } = stored;
    const merged: TenantSettingsView = { ...stored.settings, ...opts.overrides };
    const settings: TenantSettingsView = {
      ...merged,
      system_prompt: fillVariables(merged.system_prompt, opts.variables),
      greeting: fillVariables(merged.greeting, opts.variables),
    };
    const notify = opts.onFallback ?? (() => {});
    const call = settings.call;
    return {
      agent: this.agent(tenantId, settings, keys, tools, opts.onFallback, opts.meter),
      settings,
      stt: this.stt(
        tenantId,
        settings.providers.stt,
        keys,
        opts.sampleRate,
        notify,
        await this.domainCorpus(tenantId, settings.providers.stt),
        opts.meter,
      ),
      tts: this.tts(tenantId, settings.providers.tts, keys, opts.sampleRate, notify, opts.meter),
      vad: call.vad === 'energy' ? new EnergyVad() : new SileroVad({ offThread: true }),
      behaviour: {
        greeting: settings.greeting,
        endpointingMs: call.endpointing_ms,
        preemptive: call.preemptive_generation,
        adaptiveEndpointing: call.adaptive_endpointing,
        turnResumption: call.turn_resumption,
        minInterruptionMs: call.min_interruption_ms,
        silencePromptMs: call.silence_prompt_s * 1000,
        maxDurationMs: call.max_duration_s * 1000,
      },
    };
  }

  /**
   * The tenant's voice alone (its TTS chain, metered in `meter`): for a fixed message said to a caller no agent will
   * answer (all lines busy on a LiveKit phone call, as Twilio's `<Say>` says it on a Twilio one).
   */
  async ttsFor(tenantId: string, opts: { sampleRate: number; overrides?: AgentOverrides; meter?: UsageMeter }): Promise<TTS> {
    const { settings, keys } = await this.settings.forProviders(tenantId);
    const providers = { ...settings, ...opts.overrides }.providers;
    return this.tts(tenantId, providers.tts, keys, opts.sampleRate, () => {}, opts.meter);
  }

  private agent(
    tenantId: string,
    settings: TenantSettingsView,
    keys: Keys,
    tools: TenantTool[],
    onFallback?: FallbackListener,
    meter?: UsageMeter,
  ): Agent {
    const llm = this.llm(settings.providers.llm, keys, tenantId, onFallback, meter);
    const embeddingsEngine = engineOf('embeddings', settings.providers.embeddings.provider);
    // Query embeddings are the call's usage; the local embedder's are recorded too, at price 0.
    const meterEmbedder = (e: Embedder): Embedder =>
      !meter
        ? e
        : embeddingsEngine?.vendor
          ? meteredEmbedder(e, meter, embeddingsEngine.name, billedTo(embeddingsEngine.vendor, keys))
          : meteredEmbedder(e, meter, 'local', 'platform');
    // Made at the first search from the settings the call read as it started, and kept for the agent's life (a
    // call). It was looked up in the database then: one more round trip before the first answer, and at a burst of
    // calls a queued one. A failure (a missing key, say) is not kept: each search of the call fails the same way.
    let embedder: Embedder | undefined;
    const search: KnowledgeSearch = async (query, signal) => {
      // A reply prepared ahead and dropped before it searched (the caller went on speaking) does not search.
      if (!settings.rag.enabled || signal?.aborted) return [];
      embedder ??= meterEmbedder(this.embedders.of(settings.providers.embeddings, keys));
      const hits = await this.retriever.search(tenantId, query, {
        topK: settings.rag.top_k,
        minScore: settings.rag.min_score,
        minRelevance: settings.rag.min_relevance,
        embedder,
      });
      return hits.map((h) => ({
        chunkId: h.chunkId,
        documentId: h.documentId,
        documentTitle: h.documentTitle,
        headingPath: h.headingPath,
        page: h.page,
        text: h.text,
        score: h.score,
      }));
    };
    return new Agent(
      llm,
      search,
      { agentName: settings.agent_name, systemPrompt: settings.system_prompt, transferNumber: settings.call.transfer_number },
      tools.map((t) => new HttpTool(tenantId, t, this.toolRuntime)),
    );
  }

  private llm(choice: ProviderSettings['llm'], keys: Keys, tenantId: string, onFallback?: FallbackListener, meter?: UsageMeter): LLM {
    const [primary, local] = this.chain(
      'llm',
      tenantId,
      choice,
      keys,
      (engine, base) => engine.create({ ...base, outboundFetch: this.toolRuntime.outbound.fetch }),
      meter && ((llm, paidBy) => meteredLlm(llm, meter, paidBy)),
    );
    if (!local) return primary;
    return new FallbackLlm([primary, local], (failed, err) => {
      // The last engine failing is no fallback: the session records it (`provider.failed`).
      if (failed === local) return;
      this.log.warn({ tenantId, provider: failed.provider, err }, 'LLM failed before answering; falling back');
      onFallback?.('llm', failed.provider, err);
    });
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

  /** The chosen STT, then the local one, each at its own rate nearest the line's (the call resamples to the first). */
  private stt(
    tenantId: string,
    choice: ProviderSettings['stt'],
    keys: Keys,
    lineRate: number,
    notify: FallbackListener,
    corpus: string,
    meter?: UsageMeter,
  ): STT {
    const chain = this.chain(
      'stt',
      tenantId,
      choice,
      keys,
      (engine, base) => engine.create({ ...base, sampleRate: rateFor(engine, lineRate), corpus }),
      meter && ((stt, paidBy) => meteredStt(stt, meter, paidBy)),
    );
    if (chain.length === 1) return chain[0]!;
    return new FallbackStt(chain, (failed, err) => {
      if (failed === chain.at(-1)) return;
      this.log.warn({ tenantId, provider: failed.provider, err }, 'STT failed; the next engine took over');
      notify('stt', failed.provider, err);
    });
  }

  /** The chosen TTS, then the local one, each at its own rate nearest the line's (the fallback resamples to the first's). */
  private tts(
    tenantId: string,
    choice: ProviderSettings['tts'],
    keys: Keys,
    lineRate: number,
    notify: FallbackListener,
    meter?: UsageMeter,
  ): TTS {
    const chain = this.chain(
      'tts',
      tenantId,
      choice,
      keys,
      (engine, base) => engine.create({ ...base, sampleRate: rateFor(engine, lineRate), localTtsSlots: this.espeakSlots }),
      meter && ((tts, paidBy) => meteredTts(tts, meter, paidBy)),
    );
    if (chain.length === 1) return chain[0]!;
    return new FallbackTts(chain, (failed, err) => {
      if (failed === chain.at(-1)) return;
      this.log.warn({ tenantId, provider: failed.provider, err }, 'TTS failed; the next engine took over');
      notify('tts', failed.provider, err);
    });
  }

  /**
   * A kind's engines in fallback order: the one the settings name, made with the tenant's key (else the
   * platform's), then the local one. Only the local one when it was chosen, or when the chosen one has no key or
   * cannot be made from the settings (a missing base URL): the call goes on, and the log says why.
   */
  private chain<K extends Exclude<EngineKind, 'embeddings'>>(
    kind: K,
    tenantId: string,
    choice: Choices[K] & { provider: string },
    keys: Keys,
    build: (engine: Engine<K>, base: BaseContext<K>) => Products[K],
    /** Wraps each engine made in the usage meter, told who pays its vendor. */
    metered?: (product: Products[K], paidBy: BilledTo) => Products[K],
  ): [Products[K]] | [Products[K], Products[K]] {
    const local = localEngineOf(kind);
    const chosen = engineOf(kind, choice.provider) ?? local;
    const make = (engine: Engine<K>, base: BaseContext<K>) => {
      const product = build(engine, base);
      return metered ? metered(product, engine.vendor ? billedTo(engine.vendor, keys) : 'platform') : product;
    };
    if (chosen === local) return [make(local, { choice, apiKey: '', baseUrl: undefined })];
    // The settings' model or voice name the chosen engine's; the local one runs on its own defaults.
    const fallback = () => make(local, { choice: {} as Choices[K], apiKey: '', baseUrl: undefined });
    const credential = credentialFor(chosen.vendor, keys, this.platform.credentials);
    const vendor = chosen.vendor ? VENDORS[chosen.vendor].label : chosen.name;
    if (!credential) {
      this.log.warn(
        { tenantId, provider: chosen.name },
        `${vendor} chosen but no key configured; falling back to the local ${LOCAL_WORDS[kind]}`,
      );
      return [fallback()];
    }
    try {
      return [make(chosen, { choice, ...credential }), fallback()];
    } catch (err) {
      this.log.warn(
        { tenantId, provider: chosen.name, err },
        `${vendor} not usable with these settings; falling back to the local ${LOCAL_WORDS[kind]}`,
      );
      return [fallback()];
    }
  }
}
