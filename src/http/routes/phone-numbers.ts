// /api/v1/phone-numbers: the tenant's Twilio numbers (one owner per number), how their calls reach the agent,
// and the agent settings each number overrides. Anyone of the tenant reads; admins and API keys change them.
import { z } from 'zod';
import type { Deps } from '../../deps.js';
import { E164, type OurWebhooks, type PhoneNumber, TELEPHONY_MODES, TWILIO_NUMBER_SID } from '../../services/phone-numbers.js';
import { TWILIO_STATUS_PATH, TWILIO_VOICE_PATH } from '../../telephony/telephony.js';
import { agentOverridesSchema } from '../../services/settings-schema.js';
import type { App } from '../context.js';
import { principalOf } from '../auth.js';
import { publicBaseUrl } from '../public-url.js';
import { errorResponses, idParams, page, pageQuery } from '../schemas.js';

const number = z.string().regex(E164, 'must be an E.164 number such as +14155550100');
const friendlyName = z.string().trim().min(1).max(100).nullable();
const providerSid = z
  .string()
  .regex(TWILIO_NUMBER_SID, 'must be a Twilio phone number SID: PN followed by 32 lower-case hex digits')
  .nullable();
const mode = z.enum(TELEPHONY_MODES).nullable().describe('How inbound calls reach the agent; null: the tenant’s call.telephony_mode');

const phoneNumberView = z.object({
  id: z.uuid(),
  number: z.string(),
  friendly_name: z.string().nullable(),
  provider: z.string(),
  provider_sid: z.string().nullable(),
  is_active: z.boolean(),
  mode: z.enum(TELEPHONY_MODES).nullable(),
  overrides: agentOverridesSchema,
  created_at: z.string(),
  updated_at: z.string(),
});
const toView = (n: PhoneNumber): z.infer<typeof phoneNumberView> => ({
  id: n.id,
  number: n.number,
  friendly_name: n.friendlyName,
  provider: n.provider,
  provider_sid: n.providerSid,
  is_active: n.isActive,
  mode: n.mode,
  overrides: n.overrides,
  created_at: n.createdAt.toISOString(),
  updated_at: n.updatedAt.toISOString(),
});

const createBody = z.strictObject({
  number,
  friendly_name: friendlyName.optional(),
  provider_sid: providerSid.optional(),
  is_active: z.boolean().optional(),
  mode: mode.optional(),
  overrides: agentOverridesSchema.optional(),
});
// Every field optional: what is left out keeps its value. `overrides` replaces the stored object whole, so a
// key can be dropped by sending the object without it.
const patchBody = createBody.partial();

export function phoneNumberRoutes(app: App, deps: Deps): void {
  /** Our voice and status webhooks, set on a number at Twilio when it is registered. */
  const webhooks = (request: Parameters<typeof publicBaseUrl>[1]): OurWebhooks => {
    const base = publicBaseUrl(deps, request);
    return { voiceUrl: `${base}${TWILIO_VOICE_PATH}`, statusCallback: `${base}${TWILIO_STATUS_PATH}` };
  };
  const common = { tags: ['phone-numbers'], security: [{ bearer: [] }] };

  app.get(
    '/api/v1/phone-numbers',
    {
      config: { auth: 'tenant' },
      schema: {
        ...common,
        summary: 'The tenant’s phone numbers, newest first',
        querystring: pageQuery,
        response: { 200: page(phoneNumberView), ...errorResponses },
      },
    },
    async (request) => {
      const { items, total } = await deps.phoneNumbers.list(principalOf(request).tenantId, request.query);
      return { items: items.map(toView), total, ...request.query };
    },
  );

  app.post(
    '/api/v1/phone-numbers',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Register one of the Twilio account’s numbers',
        description:
          'The number must be an incoming number of the platform’s Twilio account (unless the operator switched the ' +
          'check off with PHONE_NUMBERS_SKIP_VERIFICATION) and not registered already. Either failing is the same ' +
          '422 `phone_number_unavailable`, which does not say which. Once registered, the number’s voice webhook and status ' +
          'callback on Twilio point at this service (POST; the ones it had are given back when it is removed), so nothing ' +
          'is configured by hand; with the check switched off the number is not touched on Twilio. Without Twilio ' +
          'configured: 503 `twilio_not_configured`.',
        body: createBody,
        response: { 201: phoneNumberView, ...errorResponses },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const created = await deps.phoneNumbers.create(
        principalOf(request).tenantId,
        {
          number: b.number,
          friendlyName: b.friendly_name,
          providerSid: b.provider_sid,
          isActive: b.is_active,
          mode: b.mode,
          overrides: b.overrides,
        },
        webhooks(request),
      );
      return reply.status(201).send(toView(created));
    },
  );

  app.get(
    '/api/v1/phone-numbers/:id',
    {
      config: { auth: 'tenant' },
      schema: { ...common, summary: 'One phone number', params: idParams, response: { 200: phoneNumberView, ...errorResponses } },
    },
    async (request) => toView(await deps.phoneNumbers.get(principalOf(request).tenantId, request.params.id)),
  );

  app.patch(
    '/api/v1/phone-numbers/:id',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary:
          'Change a number (merged; overrides, when given, replace the stored overrides; a new number is checked as on registration)',
        params: idParams,
        body: patchBody,
        response: { 200: phoneNumberView, ...errorResponses },
      },
    },
    async (request) => {
      const b = request.body;
      const updated = await deps.phoneNumbers.update(
        principalOf(request).tenantId,
        request.params.id,
        {
          number: b.number,
          friendlyName: b.friendly_name,
          providerSid: b.provider_sid,
          isActive: b.is_active,
          mode: b.mode,
          overrides: b.overrides,
        },
        webhooks(request),
      );
      return toView(updated);
    },
  );

  app.delete(
    '/api/v1/phone-numbers/:id',
    {
      config: { auth: 'tenant_write' },
      schema: {
        ...common,
        summary: 'Remove a number; its past calls stay, no longer linked to it; its webhooks on Twilio are given back',
        params: idParams,
        response: { 204: z.null(), ...errorResponses },
      },
    },
    async (request, reply) => {
      await deps.phoneNumbers.remove(principalOf(request).tenantId, request.params.id);
      return reply.status(204).send(null);
    },
  );
}
