// /api/v1/chat: talk to the tenant's agent in text; sessions are stored like calls (direction `chat`).
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import type { App } from '../app.js';
import { principalOf } from '../auth.js';
import { errorEnvelope, errorResponses } from '../schemas.js';

export function chatRoutes(app: App, deps: Deps): void {
  app.post(
    '/api/v1/chat',
    {
      config: { auth: 'tenant' },
      schema: {
        tags: ['chat'],
        security: [{ bearer: [] }],
        summary: 'Send a message to the agent; without session_id a new session starts (with the greeting, if set)',
        body: z.strictObject({ session_id: z.uuid().optional(), message: z.string().trim().min(1).max(4000) }),
        response: {
          200: z.object({
            session_id: z.uuid(),
            greeting: z.string().nullable(),
            reply: z.string(),
            citations: z.array(z.string()),
            action: z.object({ type: z.enum(['end_call', 'transfer_call']), reason: z.string(), to: z.string().optional() }).nullable(),
            ended: z.boolean(),
          }),
          502: errorEnvelope,
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const r = await deps.textChannel.send(p.tenantId, { sessionId: request.body.session_id, message: request.body.message, userId: p.kind === 'user' ? p.userId : undefined });
      return { session_id: r.sessionId, greeting: r.greeting, reply: r.reply, citations: r.citations, action: r.action, ended: r.ended };
    },
  );
}
