// /api/v1/chat: talk to the tenant's agent in text; sessions are stored like calls (direction `chat`).
// POST answers one message; the websocket streams each reply as the LLM writes it.
import { z } from 'zod';
import type { App, HttpDeps } from '../context.js';
import { principalOf } from '../auth.js';
import type { RawData, WebSocket } from 'ws';
import type { FastifyError } from 'fastify';
import { findUnsafeInput } from '../../lib/safe-input.js';
import { AppError, unsafeInputError, validationError } from '../../lib/errors.js';
import { classify } from '../errors.js';
import { RateLimitedError } from '../rate-limit.js';
import { errorEnvelope, errorResponses } from '../schemas.js';
import { citationSchema } from '../../lib/citation.js';

/** What a client sends on the chat websocket. */
const clientMessage = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('message'), text: z.string().trim().min(1).max(4000) }),
  // Stops the reply being written (the text equivalent of barge-in); what was written so far is kept.
  z.strictObject({ type: z.literal('cancel') }),
]);

export function chatRoutes(app: App, deps: HttpDeps): void {
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
            citations: z.array(citationSchema),
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
      const r = await deps.textChannel.send(p.tenantId, {
        sessionId: request.body.session_id,
        message: request.body.message,
        userId: p.kind === 'user' ? p.userId : undefined,
      });
      return { session_id: r.sessionId, greeting: r.greeting, reply: r.reply, citations: r.citations, action: r.action, ended: r.ended };
    },
  );

  app.get(
    '/api/v1/chat/ws',
    {
      websocket: true,
      config: { auth: 'tenant' },
      schema: {
        tags: ['chat'],
        security: [{ bearer: [] }],
        summary: 'Chat over a websocket, the reply streamed as it is written',
        description:
          'Authenticate with `Authorization: Bearer`, or from a browser with the subprotocols `bearer, <token>`. ' +
          'One socket is one session (`session_id` resumes one). Send `{"type":"message","text":"..."}` or ' +
          '`{"type":"cancel"}`; receive `{"type":"session","session_id","greeting"}` once, then per message ' +
          '`{"type":"delta","text"}`... and `{"type":"reply","reply","citations","action","ended"}` (each citation a `Citation`: ' +
          '`chunk_id`, `document_id`, `title`, `heading_path`, `page`, `snippet`); problems come as ' +
          '`{"type":"error","error":{"code","message"}}` and leave the socket open (when the message that opened the ' +
          'session fails, the session is not kept, and the next message opens a new one). When the agent ends the session ' +
          'the socket closes with 1000. Messages sent while a reply is being written wait their turn. Each message counts ' +
          'against the same rate limits as a request (past them: `rate_limited` with `retry_after` in seconds); a user ' +
          'deactivated, a key revoked or a tenant suspended meanwhile gets its error code and the socket closes with 1008.',
        querystring: z.strictObject({ session_id: z.uuid().optional() }),
      },
    },
    (socket: WebSocket, request) => {
      const p = principalOf(request);
      const limits = deps.config.rateLimits;
      const userId = p.kind === 'user' ? p.userId : undefined;
      let sessionId = request.query.session_id;
      let current: AbortController | undefined;
      let queue = Promise.resolve();
      let ended = false;
      const send = (message: Record<string, unknown>) => {
        if (socket.readyState === socket.OPEN) socket.send(JSON.stringify(message));
      };
      const sendError = (err: unknown) => {
        const { status, code, message, details } = classify(err as FastifyError, false);
        if (status >= 500) request.log.error({ err }, 'chat message failed');
        const retryAfter = err instanceof RateLimitedError ? { retry_after: err.retryAfterS } : {};
        send({ type: 'error', error: { code, message, ...(details && { details }), ...retryAfter } });
      };

      const answer = async (text: string) => {
        if (ended) return sendError(new AppError('conflict', 'This chat session has ended'));
        const controller = new AbortController();
        current = controller;
        const opensSession = !sessionId;
        try {
          for await (const event of deps.textChannel.stream(p.tenantId, { sessionId, message: text, userId }, controller.signal)) {
            if (event.type === 'session') {
              if (!sessionId) send({ type: 'session', session_id: event.sessionId, greeting: event.greeting });
              sessionId = event.sessionId;
            } else if (event.type === 'delta') send({ type: 'delta', text: event.text });
            else {
              const r = event.reply;
              send({
                type: 'reply',
                session_id: r.sessionId,
                reply: r.reply,
                citations: r.citations,
                action: r.action,
                ended: r.ended,
                cancelled: controller.signal.aborted,
              });
              if (r.ended) {
                ended = true;
                socket.close(1000, 'session ended');
              }
            }
          }
        } catch (err) {
          // A failed first message leaves no session (TextChannel deletes it): the next one starts a new session.
          if (opensSession) sessionId = undefined;
          sendError(err);
        } finally {
          current = undefined;
        }
      };

      // Each message is admitted like a REST request: it counts against the IP's and the tenant's limits (refused
      // in-band with retry_after past them), and the principal is checked again, so a user deactivated or a tenant
      // suspended since the socket opened is refused and the socket closed (1008). Admissions run one at a time, in
      // the order messages arrived; answers queue separately, so a cancel is not stuck behind a reply.
      let admissions = Promise.resolve();
      const admit = async (data: RawData, isBinary: boolean) => {
        if (socket.readyState !== socket.OPEN) return;
        try {
          await deps.rateLimiter.perIp(undefined, request.ip, limits.perIpPerMinute);
          await deps.rateLimiter.perTenant(undefined, p.tenantId, limits.perTenantPerMinute);
        } catch (err) {
          return sendError(err);
        }
        try {
          await deps.authenticator.recheck(p);
        } catch (err) {
          sendError(err);
          // Refused access ends the socket; a failure of ours (the database) only fails this message.
          if (err instanceof AppError) {
            current?.abort();
            socket.close(1008, err.code);
          }
          return;
        }
        let json: unknown;
        try {
          json = isBinary ? undefined : JSON.parse(data.toString());
        } catch {
          return sendError(new AppError('invalid_json', 'A message must be a JSON object'));
        }
        // Messages arrive past the app's input check: the same rule for their text (lib/safe-input.ts).
        const unsafe = findUnsafeInput(json);
        if (unsafe) return sendError(unsafeInputError('message', unsafe));
        const parsed = clientMessage.safeParse(json);
        if (!parsed.success) return sendError(validationError(parsed.error, 'message'));
        if (parsed.data.type === 'cancel') return current?.abort();
        const text = parsed.data.text;
        queue = queue.then(() => answer(text));
      };
      socket.on('message', (data, isBinary) => {
        admissions = admissions.then(() => admit(data, isBinary)).catch(sendError);
      });
      // A client that leaves stops the reply being written; the turn is stored as interrupted.
      socket.on('close', () => current?.abort());
    },
  );
}
