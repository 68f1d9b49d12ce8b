// /api/v1/api-keys: a tenant admin creates (shown once), lists and revokes the tenant's API keys.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { ApiKey } from '../../services/api-keys.js';
import type { App } from '../context.js';
import { userOf } from '../auth.js';
import { errorResponses, idParams, iso } from '../schemas.js';

const apiKeyView = z.object({
  id: z.uuid(),
  name: z.string(),
  prefix: z.string(),
  created_by_user_id: z.uuid().nullable(),
  last_used_at: z.string().nullable(),
  expires_at: z.string().nullable(),
  created_at: z.string(),
});
const toView = (k: ApiKey): z.infer<typeof apiKeyView> => ({
  id: k.id,
  name: k.name,
  prefix: k.prefix,
  created_by_user_id: k.createdByUserId,
  last_used_at: iso(k.lastUsedAt),
  expires_at: iso(k.expiresAt),
  created_at: k.createdAt.toISOString(),
});

export function apiKeyRoutes(app: App, deps: Deps): void {
  const common = { tags: ['api-keys'], security: [{ bearer: [] }] };

  app.post(
    '/api/v1/api-keys',
    {
      config: { auth: 'tenant_admin' },
      schema: {
        ...common,
        summary: 'Create an API key; the key itself is returned only in this response',
        body: z.strictObject({
          name: z.string().trim().min(1).max(100),
          expires_at: z.iso
            .datetime({ offset: true })
            .refine((d) => Date.parse(d) > Date.now(), 'must be in the future')
            .optional(),
        }),
        response: { 201: apiKeyView.extend({ key: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => {
      const p = userOf(request);
      const { row, key } = await deps.apiKeys.create(p.tenantId, {
        name: request.body.name,
        expiresAt: request.body.expires_at ? new Date(request.body.expires_at) : undefined,
        createdByUserId: p.userId,
      });
      return reply.status(201).send({ ...toView(row), key });
    },
  );

  app.get(
    '/api/v1/api-keys',
    {
      config: { auth: 'tenant_admin' },
      schema: {
        ...common,
        summary: 'List live API keys (never the keys themselves)',
        response: { 200: z.object({ items: z.array(apiKeyView) }), ...errorResponses },
      },
    },
    async (request) => ({ items: (await deps.apiKeys.list(userOf(request).tenantId)).map(toView) }),
  );

  app.delete(
    '/api/v1/api-keys/:id',
    {
      config: { auth: 'tenant_admin' },
      schema: { ...common, summary: 'Revoke an API key at once', params: idParams, response: { 204: z.null(), ...errorResponses } },
    },
    async (request, reply) => {
      await deps.apiKeys.revoke(userOf(request).tenantId, request.params.id);
      return reply.status(204).send(null);
    },
  );
}
