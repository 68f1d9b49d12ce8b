// Which engine analyses a tenant's calls: the tenant's LLM choice (providers.llm) with the one key rule; the local
// engine when that is the local responder or no key is there. Also what the worker needs of the tenant's settings.
import { credentialFor, type PlatformCredentials } from '../providers/vendors.js';
import type { AnalysisSettings, SettingsService } from '../services/settings.js';
import type { Analyzer } from './analyzer.js';
import { AnthropicAnalyzer } from './anthropic-analyzer.js';
import { LocalAnalyzer } from './local-analyzer.js';
import { OpenAiAnalyzer } from './openai-analyzer.js';

export interface TenantAnalysis {
  analyzer: Analyzer;
  settings: AnalysisSettings;
  agentName: string;
}

export interface AnalyzerSource {
  forTenant(tenantId: string): Promise<TenantAnalysis>;
}

export class AnalyzerRegistry implements AnalyzerSource {
  constructor(
    private readonly settings: SettingsService,
    private readonly platform: PlatformCredentials,
    /** The outbound guard's fetch: an OpenAI-compatible server is a URL the tenant chose. */
    private readonly outboundFetch: typeof fetch,
  ) {}

  async forTenant(tenantId: string): Promise<TenantAnalysis> {
    const { settings, keys } = await this.settings.forProviders(tenantId);
    const choice = settings.providers.llm;
    let analyzer: Analyzer = new LocalAnalyzer();
    if (choice.provider === 'openai' || choice.provider === 'anthropic') {
      const cred = credentialFor(choice.provider, keys, this.platform);
      if (cred && choice.provider === 'openai')
        analyzer = new OpenAiAnalyzer({ apiKey: cred.apiKey, baseURL: cred.baseUrl, model: choice.model });
      else if (cred) analyzer = new AnthropicAnalyzer({ apiKey: cred.apiKey, baseURL: cred.baseUrl, model: choice.model });
    } else if (choice.provider === 'openai_compatible' && choice.base_url) {
      const cred = credentialFor('openai_compatible', keys, this.platform);
      analyzer = new OpenAiAnalyzer({
        apiKey: cred?.apiKey || 'none',
        baseURL: choice.base_url,
        model: choice.model ?? 'default',
        provider: 'openai_compatible',
        fetch: this.outboundFetch,
      });
    }
    return { analyzer, settings: settings.analysis, agentName: settings.agent_name };
  }
}
