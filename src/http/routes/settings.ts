// /api/v1/settings: the tenant's agent settings (admins and API keys may change them), its signing secret, and
// each user's own preferences.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { toolParametersView } from '../../lib/json-schema.js';
import { agentFieldsSchema, callPatchSchema, callSchema, PROVIDER_KEY_NAMES, providersPatchSchema, ragPatchSchema, ragSchema, toolsPutSchema } from '../../services/settings.js';
import type { App } from '../context.js';
import { validationError } from '../../lib/errors.js';
import { principalOf, userOf } from '../auth.js';
import { errorResponses } from '../schemas.js';

const keyStatus = z.object({ configured: z.boolean(), last4: z.string().nullable() });
const toolView = z.object({
  name: z.string(),
  description: z.string(),
  parameters: toolParametersView,
  url: z.string(),
  method: z.enum(['POST', 'GET']),
  timeout_ms: z.number().int(),
  headers: z.record(z.string(), keyStatus),
});
const tenantSettingsView = z.object({
  agent_name: z.string(),
  system_prompt: z.string().nullable(),
  greeting: z.string().nullable(),
  language: z.string(),
  rag: ragSchema.required(),
  call: callSchema.required(),
  providers: z.object({
    stt: z.object({ provider: z.string(), model: z.string().optional(), language: z.string().optional() }),
    llm: z.object({ provider: z.string(), model: z.string().optional(), base_url: z.string().optional(), temperature: z.number().optional() }),
    tts: z.object({ provider: z.string(), model: z.string().optional(), voice: z.string().optional() }),
    embeddings: z.object({ provider: z.string(), model: z.string().optional(), dimensions: z.number().optional() }),
  }),
  provider_keys: z.object(Object.fromEntries(PROVIDER_KEY_NAMES.map((n) => [n, keyStatus])) as Record<(typeof PROVIDER_KEY_NAMES)[number], typeof keyStatus>),
  tools: z.array(toolView),
  updated_at: z.string().nullable(),
});

// Every field optional: PUT merges into what is stored. Unknown fields are rejected by name.
const tenantSettingsPut = agentFieldsSchema.extend({
  rag: ragPatchSchema.optional(),
  call: callPatchSchema.optional(),
  providers: providersPatchSchema.optional(),
  provider_keys: z
    .strictObject(Object.fromEntries(PROVIDER_KEY_NAMES.map((n) => [n, z.string().trim().min(8).max(500).nullable().optional()])) as Record<
      (typeof PROVIDER_KEY_NAMES)[number],
      z.ZodOptional<z.ZodNullable<z.ZodString>>
    >)
    .optional(),
  tools: toolsPutSchema
    .describe(
      'The tenant’s HTTP tools (at most 20). Given, it replaces the whole list ([] removes every tool); left out, the ' +
        'tools stay as they are. Header values are write-only: send a header back as the GET shows it ' +
        '({"configured": true, ...}) to keep its stored value.',
    )
    .optional(),
});

const signingSecretStatus = z.object({
  configured: z.boolean(),
  created_at: z.string().nullable(),
  last4: z.string().nullable(),
  previous_expires_at: z.string().nullable(),
});

const userSettings = z.object({ preferred_voice: z.string().nullable(), preferred_model: z.string().nullable(), updated_at: z.string().nullable() });

export function settingsRoutes(app: App, deps: Deps): void {
  const common = { tags: ['settings'], security: [{ bearer: [] }] };

  app.get(
    '/api/v1/settings/tenant',
    { config: { auth: 'tenant' }, schema: { ...common, summary: 'The tenant’s agent settings; provider keys only as configured/last4', response: { 200: tenantSettingsView, ...errorResponses } } },
    async (request) => deps.settings.getTenant(principalOf(request).tenantId),
  );

  app.put(
    '/api/v1/settings/tenant',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Change agent settings (merged; a provider key set to null is removed; tools, when given, replace the list)',
        body: tenantSettingsPut,
        response: { 200: tenantSettingsView, ...errorResponses },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const before = await deps.settings.getTenant(p.tenantId);
      // Partial provider objects are re-validated against the full schema when merged in the service.
      let after;
      try {
        after = await deps.settings.putTenant(p.tenantId, request.body as Parameters<typeof deps.settings.putTenant>[1]);
      } catch (err) {
        if (err instanceof z.ZodError) throw validationError(err);
        throw err;
      }
      // Vectors of different models cannot be compared: a new embedding model means embedding everything again.
      if (JSON.stringify(before.providers.embeddings) !== JSON.stringify(after.providers.embeddings)) {
        const n = await deps.documents.requeueAll(p.tenantId);
        request.log.info({ documents: n }, 'embedding model changed; documents re-queued');
      }
      return after;
    },
  );

  app.get(
    '/api/v1/settings/signing-secret',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'Whether the tenant has a signing secret (tool requests carry X-Voice-Signature made with it); never the secret',
        response: { 200: signingSecretStatus, ...errorResponses },
      },
    },
    async (request) => deps.signingSecrets.status(principalOf(request).tenantId),
  );

  app.post(
    '/api/v1/settings/signing-secret',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Make a new signing secret and return it, this once',
        description:
          'The previous secret keeps signing next to the new one (a second v1 in X-Voice-Signature) until ' +
          '`previous_expires_at`, so servers can switch to the new secret without refusing requests meanwhile.',
        response: { 201: signingSecretStatus.extend({ secret: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { tenantId } = principalOf(request);
      const rotated = await deps.signingSecrets.rotate(tenantId);
      request.log.info({ tenantId }, 'signing secret rotated');
      return reply.status(201).send(rotated);
    },
  );

  app.get(
    '/api/v1/settings/user',
    { config: { auth: 'user' }, schema: { ...common, summary: 'The signed-in user’s preferences', response: { 200: userSettings, ...errorResponses } } },
    async (request) => {
      const p = userOf(request);
      return deps.settings.getUser(p.tenantId, p.userId);
    },
  );

  app.put(
    '/api/v1/settings/user',
    {
      config: { auth: 'user' },
      schema: {
        ...common,
        summary: 'Change the signed-in user’s preferences (merged)',
        body: z.strictObject({ preferred_voice: z.string().trim().min(1).max(200).nullable().optional(), preferred_model: z.string().trim().min(1).max(200).nullable().optional() }),
        response: { 200: userSettings, ...errorResponses },
      },
    },
    async (request) => {
      const p = userOf(request);
      return deps.settings.putUser(p.tenantId, p.userId, request.body);
    },
  );
}
