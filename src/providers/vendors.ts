// The vendors whose engines we call, and the one rule for whose key a call uses. A vendor is what a key belongs to
// (one OpenAI key serves its LLM and its embeddings); engines are rows in engines.ts. No imports: config.ts reads
// the variable names from here.

export interface Vendor {
  /** How messages and logs name it. */
  readonly label: string;
  /**
   * The platform's credential, read by config.ts from these variables (`.env.example` documents them). Absent: the
   * vendor has no platform credential, only tenants' keys.
   */
  readonly env?: { readonly apiKey: string; readonly baseUrl: string; readonly baseUrlProtocols: readonly string[] };
  /** False: an engine of this vendor runs without a key (a local server usually takes any). */
  readonly keyRequired?: boolean;
}

/** In the order the settings list provider keys. */
export const VENDORS = {
  openai: { label: 'OpenAI', env: { apiKey: 'OPENAI_API_KEY', baseUrl: 'OPENAI_BASE_URL', baseUrlProtocols: ['http:', 'https:'] } },
  anthropic: {
    label: 'Anthropic',
    env: { apiKey: 'ANTHROPIC_API_KEY', baseUrl: 'ANTHROPIC_BASE_URL', baseUrlProtocols: ['http:', 'https:'] },
  },
  deepgram: { label: 'Deepgram', env: { apiKey: 'DEEPGRAM_API_KEY', baseUrl: 'DEEPGRAM_BASE_URL', baseUrlProtocols: ['ws:', 'wss:'] } },
  elevenlabs: {
    label: 'ElevenLabs',
    env: { apiKey: 'ELEVENLABS_API_KEY', baseUrl: 'ELEVENLABS_BASE_URL', baseUrlProtocols: ['http:', 'https:'] },
  },
  // The tenant names the server (providers.llm.base_url), so the platform has no credential for it.
  openai_compatible: { label: 'OpenAI-compatible server', keyRequired: false },
} as const satisfies Record<string, Vendor>;

export type VendorName = keyof typeof VENDORS;
/** The vendors the platform may hold a credential for. */
export type PlatformVendor = { [V in VendorName]: (typeof VENDORS)[V] extends { env: object } ? V : never }[VendorName];
export const PLATFORM_VENDORS = (Object.keys(VENDORS) as VendorName[]).filter((v): v is PlatformVendor => 'env' in VENDORS[v]);

/** A platform credential: the key, and where the vendor's API is (a proxy, a local fake); unset: the vendor's own. */
export interface Credential {
  apiKey?: string;
  baseUrl?: string;
}
export type PlatformCredentials = Partial<Record<PlatformVendor, Credential>>;

/** The one rule for a key: the tenant's own (sealed in its settings, opened for this call), else the platform's. */
export function resolveKey(
  vendor: VendorName,
  tenantKeys: Partial<Record<string, string>>,
  platform: PlatformCredentials,
): string | undefined {
  return tenantKeys[vendor] ?? (isPlatformVendor(vendor) ? platform[vendor]?.apiKey : undefined);
}

/** Where the vendor's API is, as the platform configured it. */
export function baseUrlOf(vendor: VendorName, platform: PlatformCredentials): string | undefined {
  return isPlatformVendor(vendor) ? platform[vendor]?.baseUrl : undefined;
}

function isPlatformVendor(v: VendorName): v is PlatformVendor {
  return 'env' in VENDORS[v];
}

/**
 * What an engine of `vendor` is made with: the key by the rule above and the platform's base URL. Undefined when the
 * vendor needs a key and neither the tenant nor the platform has one. An engine without a vendor needs nothing.
 */
export function credentialFor(
  vendor: VendorName | undefined,
  tenantKeys: Partial<Record<string, string>>,
  platform: PlatformCredentials,
): { apiKey: string; baseUrl: string | undefined } | undefined {
  if (vendor === undefined) return { apiKey: '', baseUrl: undefined };
  const apiKey = resolveKey(vendor, tenantKeys, platform);
  const required = (VENDORS[vendor] as Vendor).keyRequired ?? true;
  if (!apiKey && required) return undefined;
  return { apiKey: apiKey ?? '', baseUrl: baseUrlOf(vendor, platform) };
}

/**
 * Who the vendor bills for an engine of `vendor`: the tenant when its own key is used (or its own server, a vendor
 * the platform holds no credential for), else the platform. The usage ledger shows cost on both sides.
 */
export function keyOwner(vendor: VendorName, tenantKeys: Partial<Record<string, string>>): 'tenant' | 'platform' {
  return tenantKeys[vendor] || !isPlatformVendor(vendor) ? 'tenant' : 'platform';
}
