// /api/v1/settings: the tenant's agent settings (admins and API keys may change them), its signing secret, and
// each user's own preferences.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { tenantSettingsPatchSchema, tenantSettingsViewSchema } from '../../services/settings.js';
import type { App } from '../context.js';
import { validationError } from '../../lib/errors.js';
import { principalOf, userOf } from '../auth.js';
import { errorResponses } from '../schemas.js';

const signingSecretStatus = z.object({
  configured: z.boolean(),
  created_at: z.string().nullable(),
  last4: z.string().nullable(),
  previous_expires_at: z.string().nullable(),
});

const userSettings = z.object({
  preferred_voice: z.string().nullable(),
  preferred_model: z.string().nullable(),
  updated_at: z.string().nullable(),
});

export function settingsRoutes(app: App, deps: Deps): void {
  const common = { tags: ['settings'], security: [{ bearer: [] }] };

  app.get(
    '/api/v1/settings/tenant',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'The tenant’s agent settings; provider keys only as configured/last4',
        response: { 200: tenantSettingsViewSchema, ...errorResponses },
      },
    },
    async (request) => deps.settings.getTenant(principalOf(request).tenantId),
  );

  app.put(
    '/api/v1/settings/tenant',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Change agent settings (merged; a provider key set to null is removed; tools, when given, replace the list)',
        body: tenantSettingsPatchSchema,
        response: { 200: tenantSettingsViewSchema, ...errorResponses },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const before = await deps.settings.getTenant(p.tenantId);
      // The merged settings are checked again as a whole in the service.
      let after;
      try {
        after = await deps.settings.putTenant(p.tenantId, request.body);
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
    {
      config: { auth: 'user' },
      schema: { ...common, summary: 'The signed-in user’s preferences', response: { 200: userSettings, ...errorResponses } },
    },
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
        body: z.strictObject({
          preferred_voice: z.string().trim().min(1).max(200).nullable().optional(),
          preferred_model: z.string().trim().min(1).max(200).nullable().optional(),
        }),
        response: { 200: userSettings, ...errorResponses },
      },
    },
    async (request) => {
      const p = userOf(request);
      return deps.settings.putUser(p.tenantId, p.userId, request.body);
    },
  );
}
