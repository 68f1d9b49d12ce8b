// Provider choice is data: the tenant's settings name the engines, this turns them into instances. Every chain
// ends with a local engine, so a call goes on when a cloud provider fails or has no key.
import type { FastifyBaseLogger } from 'fastify';
import type { Config } from '../config.js';
import { ProviderError } from '../lib/provider-error.js';
import type { Retriever } from '../rag/retriever.js';
import type { ProviderKeyName, ProviderSettings, SettingsService, TenantSettingsView } from '../services/settings.js';
import { Agent, type KnowledgeSearch } from './agent.js';
import { FallbackLlm } from './llm/fallback-llm.js';
import type { LLM } from './llm/llm.js';
import { LocalResponder } from './llm/local-responder.js';
import { AnthropicLlm } from './llm/anthropic-llm.js';
import { OpenAiLlm } from './llm/openai-llm.js';

export interface TenantAgent {
  agent: Agent;
  settings: TenantSettingsView;
}

export class ProviderRegistry {
  private readonly local = new LocalResponder();

  constructor(
    private readonly settings: SettingsService,
    private readonly retriever: Retriever,
    private readonly platformKeys: Config['providerKeys'] & { openaiBaseUrl?: string; anthropicBaseUrl?: string },
    private readonly log: FastifyBaseLogger,
  ) {}

  async agentFor(tenantId: string): Promise<TenantAgent> {
    const { settings, keys } = await this.settings.forProviders(tenantId);
    const llm = this.llm(settings.providers.llm, keys, tenantId);
    const search: KnowledgeSearch = async (query) => {
      if (!settings.rag.enabled) return [];
      const hits = await this.retriever.search(tenantId, query, { topK: settings.rag.top_k, minScore: settings.rag.min_score });
      return hits.map((h) => ({ chunkId: h.chunkId, documentTitle: h.documentTitle, text: h.text, score: h.score }));
    };
    const agent = new Agent(llm, search, { agentName: settings.agent_name, systemPrompt: settings.system_prompt, transferNumber: settings.call.transfer_number });
    return { agent, settings };
  }

  private llm(choice: ProviderSettings['llm'], keys: Partial<Record<ProviderKeyName, string>>, tenantId: string): LLM {
    if (choice.provider === 'local') return this.local;
    let primary: LLM;
    try {
      primary = this.cloudLlm(choice, keys);
    } catch (err) {
      this.log.warn({ tenantId, provider: choice.provider, err }, 'LLM not usable (settings or key); falling back to the local responder');
      return this.local;
    }
    return new FallbackLlm([primary, this.local], (failed, err) =>
      this.log.warn({ tenantId, provider: failed.provider, err }, 'LLM failed before answering; falling back'),
    );
  }

  private cloudLlm(choice: ProviderSettings['llm'], keys: Partial<Record<ProviderKeyName, string>>): LLM {
    switch (choice.provider) {
      case 'local':
        return this.local;
      case 'openai': {
        const apiKey = keys.openai ?? this.platformKeys.openai;
        if (!apiKey) throw new ProviderError('openai', 'no OpenAI API key configured', false);
        return new OpenAiLlm({ apiKey, model: choice.model, baseURL: this.platformKeys.openaiBaseUrl });
      }
      case 'openai_compatible':
        if (!choice.base_url) throw new ProviderError('openai_compatible', 'providers.llm.base_url is required for an OpenAI-compatible server', false);
        // Local servers (Ollama, vLLM, llama.cpp) usually take any key.
        return new OpenAiLlm({ apiKey: keys.openai_compatible ?? 'none', model: choice.model ?? 'default', baseURL: choice.base_url, provider: 'openai_compatible' });
      case 'anthropic': {
        const apiKey = keys.anthropic ?? this.platformKeys.anthropic;
        if (!apiKey) throw new ProviderError('anthropic', 'no Anthropic API key configured', false);
        return new AnthropicLlm({ apiKey, model: choice.model, baseURL: this.platformKeys.anthropicBaseUrl });
      }
    }
  }
}
