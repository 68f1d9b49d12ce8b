// /api/v1/users: a tenant admin manages the tenant's users. DELETE deactivates (records keep their author).
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { App } from '../context.js';
import { userOf } from '../auth.js';
import { email, errorResponses, idParams, page, pageQuery, password } from '../schemas.js';
import { toUser, userView } from '../views.js';

const role = z.enum(['admin', 'member']);

export function userRoutes(app: App, deps: Deps): void {
  const common = { tags: ['users'], security: [{ bearer: [] }] };

  app.get(
    '/api/v1/users',
    {
      config: { auth: 'tenant_admin' },
      schema: { ...common, summary: 'List users', querystring: pageQuery, response: { 200: page(userView), ...errorResponses } },
    },
    async (request) => {
      const { items, total } = await deps.accounts.listUsers(userOf(request).tenantId, request.query);
      return { items: items.map(toUser), total, ...request.query };
    },
  );

  app.post(
    '/api/v1/users',
    {
      config: { auth: 'tenant_admin' },
      schema: {
        ...common,
        summary: 'Create a user in the caller’s tenant',
        body: z.strictObject({ email, password, full_name: z.string().trim().min(1).max(200).optional(), role: role.default('member') }),
        response: { 201: userView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const user = await deps.accounts.createUser(userOf(request).tenantId, {
        email: b.email,
        password: b.password,
        fullName: b.full_name,
        role: b.role,
      });
      return reply.status(201).send(toUser(user));
    },
  );

  app.get(
    '/api/v1/users/:id',
    {
      config: { auth: 'tenant_admin' },
      schema: { ...common, summary: 'One user', params: idParams, response: { 200: userView, ...errorResponses } },
    },
    async (request) => toUser(await deps.accounts.getUser(userOf(request).tenantId, request.params.id)),
  );

  app.patch(
    '/api/v1/users/:id',
    {
      config: { auth: 'tenant_admin' },
      schema: {
        ...common,
        summary: 'Change a user’s role, active flag or name',
        params: idParams,
        body: z
          .strictObject({
            role: role.optional(),
            is_active: z.boolean().optional(),
            full_name: z.string().trim().min(1).max(200).nullable().optional(),
          })
          .refine((b) => Object.keys(b).length > 0, 'must change at least one field'),
        response: { 200: userView, ...errorResponses },
      },
    },
    async (request) => {
      const b = request.body;
      const user = await deps.accounts.updateUser(userOf(request).tenantId, request.params.id, {
        role: b.role,
        isActive: b.is_active,
        fullName: b.full_name,
      });
      // The web calls the user started end with their access.
      if (b.is_active === false) await deps.telephony.endLiveCalls({ tenantId: user.tenantId, userId: user.id }, 'user deactivated');
      return toUser(user);
    },
  );

  app.delete(
    '/api/v1/users/:id',
    {
      config: { auth: 'tenant_admin' },
      schema: {
        ...common,
        summary: 'Deactivate a user: their tokens stop working at once',
        params: idParams,
        response: { 200: userView, ...errorResponses },
      },
    },
    async (request) => {
      const user = await deps.accounts.updateUser(userOf(request).tenantId, request.params.id, { isActive: false });
      await deps.telephony.endLiveCalls({ tenantId: user.tenantId, userId: user.id }, 'user deactivated');
      return toUser(user);
    },
  );
}
