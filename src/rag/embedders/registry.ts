// Which embedder a tenant uses: provider choice is data in its settings; keys come from its settings first,
// then from the platform config. Ingestion and search both ask here, so they always agree on the model.
import { ProviderError } from '../../lib/provider-error.js';
import type { SettingsService } from '../../services/settings.js';
import type { Embedder } from './embedder.js';
import { LocalEmbedder } from './local-embedder.js';
import { OpenAIEmbedder } from './openai-embedder.js';

export interface EmbedderRegistryConfig {
  openaiApiKey: string | undefined;
  openaiBaseUrl: string | undefined;
}

export class EmbedderRegistry {
  private readonly local = new LocalEmbedder();

  constructor(
    private readonly settings: SettingsService,
    private readonly config: EmbedderRegistryConfig,
  ) {}

  async forTenant(tenantId: string): Promise<Embedder> {
    const { settings, keys } = await this.settings.forProviders(tenantId);
    const choice = settings.providers.embeddings;
    if (choice.provider === 'local') return this.local;
    const apiKey = keys.openai ?? this.config.openaiApiKey;
    if (!apiKey) {
      throw new ProviderError('openai', 'Embeddings provider is openai but no OpenAI API key is configured (settings provider_keys.openai or OPENAI_API_KEY)', false);
    }
    try {
      return new OpenAIEmbedder({ apiKey, model: choice.model, dimensions: choice.dimensions, baseURL: this.config.openaiBaseUrl });
    } catch (err) {
      // A model/dimensions combination the adapter cannot serve is a configuration problem, not a crash.
      throw new ProviderError('openai', (err as Error).message, false);
    }
  }
}
