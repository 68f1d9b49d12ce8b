// Twilio's side of phone calls: the voice webhook (answers with TwiML), status callbacks, and the Media Streams
// websocket. Every webhook is checked against X-Twilio-Signature before anything is read from it: 403 otherwise.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { TWILIO_STATUS_PATH, TWILIO_STREAM_PATH, TWILIO_VOICE_PATH } from '../../telephony/telephony.js';
import { type TwilioParams, verifyTwilioBodySignature, verifyTwilioSignature } from '../../telephony/twilio-signature.js';
import type { App, HttpDeps } from '../context.js';
import { AppError } from '../../lib/errors.js';
import { publicBaseUrl } from '../public-url.js';
import { takeUpgradeSocket } from '../upgrades.js';
import { errorResponses } from '../schemas.js';

/** The request as Twilio sent it: the raw body (for bodySHA256), its form parameters, and whether it is JSON. */
interface TwilioBody {
  raw: string;
  params: TwilioParams;
  json: boolean;
}

/** Checks the signature (form or bodySHA256 variant) and returns the parameters as single values. */
async function verified(deps: HttpDeps, request: FastifyRequest, reply: FastifyReply): Promise<Record<string, string>> {
  const token = deps.telephony.twilioAuthToken;
  if (!token)
    throw new AppError('twilio_not_configured', 'Twilio is not configured on this server (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN)');
  const url = `${publicBaseUrl(deps, request)}${request.url}`;
  const signature = request.headers['x-twilio-signature'];
  const body = (request.body ?? { raw: '', params: {}, json: false }) as TwilioBody;
  const sig = typeof signature === 'string' ? signature : undefined;
  // A JSON body is covered only through bodySHA256 (the signature itself covers the URL alone): without it the
  // body would be unsigned, so it is refused.
  const bodyHashed = body.json || new URL(url).searchParams.has('bodySHA256');
  const ok = bodyHashed ? verifyTwilioBodySignature(token, sig, url, body.raw) : verifyTwilioSignature(token, sig, url, body.params);
  if (!ok) {
    request.log.warn({ url: request.url }, 'Twilio webhook with a bad or missing signature');
    await deps.rateLimiter.perIp(reply, request.ip, deps.config.rateLimits.perIpPerMinute);
    throw new AppError('invalid_signature', 'X-Twilio-Signature does not match this request');
  }
  const single: Record<string, string> = {};
  for (const [k, v] of Object.entries(body.params)) single[k] = Array.isArray(v) ? v[0]! : v;
  if (body.json) {
    // The JSON variant: its fields are the parameters.
    try {
      for (const [k, v] of Object.entries(JSON.parse(body.raw) as Record<string, unknown>)) if (typeof v === 'string') single[k] = v;
    } catch {
      throw new AppError('invalid_json', 'The webhook body is not valid JSON');
    }
  }
  return single;
}

const twimlResponse = { 200: z.string().describe('TwiML'), ...errorResponses };

export async function twilioRoutes(app: App, deps: HttpDeps): Promise<void> {
  const common = { tags: ['twilio'] };

  await app.register(async (scope) => {
    // Form bodies keep every value of a repeated parameter: the signature covers all of them.
    scope.addContentTypeParser(['application/x-www-form-urlencoded', 'application/json'], { parseAs: 'string' }, (request, raw, done) => {
      const params: TwilioParams = {};
      const json = String(raw).trimStart().startsWith('{') || /^application\/json\b/i.test(request.headers['content-type'] ?? '');
      if (!json) {
        for (const [k, v] of new URLSearchParams(String(raw))) {
          const prev = params[k];
          params[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
        }
      }
      done(null, { raw: String(raw), params, json } satisfies TwilioBody);
    });

    scope.post(
      TWILIO_VOICE_PATH,
      {
        config: { auth: 'public', rateLimit: 'signed' },
        schema: {
          ...common,
          summary: 'Twilio voice webhook: TwiML connecting the call to the agent',
          description:
            'Signed by Twilio (X-Twilio-Signature; 403 otherwise). An inbound call finds its tenant by the dialled number and gets `<Connect><Stream>` ' +
            '(media_stream mode, with a short-lived per-call token) or `<Dial><Sip>` (livekit mode); an unknown number hears a polite message and the call ends.',
        },
      },
      async (request, reply) => {
        const params = await verified(deps, request, reply);
        const twiml = await deps.telephony.voiceWebhook(params, publicBaseUrl(deps, request));
        return reply.type('text/xml').send(twiml);
      },
    );

    scope.post(
      TWILIO_STATUS_PATH,
      {
        config: { auth: 'public', rateLimit: 'signed' },
        schema: {
          ...common,
          summary: 'Twilio status callback: the call’s status and timing (applied once, in order)',
          response: { 204: z.null(), ...errorResponses },
        },
      },
      async (request, reply) => {
        await deps.telephony.statusWebhook(await verified(deps, request, reply));
        return reply.status(204).send();
      },
    );
  });

  app.get(
    TWILIO_STREAM_PATH,
    {
      websocket: true,
      config: { auth: 'public' },
      // With a media process (MEDIA_PROCESS), the connection goes there before the handshake (after the rate limits,
      // which ran in the app's own onRequest hook); the handler below is then never reached.
      onRequest: (request, reply, done) => {
        const media = deps.telephony.mediaProcess;
        const up = media && takeUpgradeSocket(request.raw);
        if (up) {
          reply.hijack();
          void deps.telephony
            .handOffTwilioStream(media, request.raw, up.socket, up.head)
            .catch((err: unknown) => app.log.error({ err }, 'media stream failed'));
        }
        done();
      },
      schema: {
        ...common,
        summary: 'Twilio Media Streams websocket (the `start` message carries the call token from our TwiML)',
        response: { 101: z.null(), ...twimlResponse },
      },
    },
    (socket) => {
      void deps.telephony.acceptTwilioStream(socket).catch((err: unknown) => app.log.error({ err }, 'media stream failed'));
    },
  );
}
