// Short names for the API's shapes, all derived from schema.d.ts (never written by hand).
import type { components, paths } from './schema';

type Ok<T> = T extends { 200: { content: { 'application/json': infer B } } }
  ? B
  : T extends { 201: { content: { 'application/json': infer B } } }
    ? B
    : T extends { 202: { content: { 'application/json': infer B } } }
      ? B
      : never;

/** The JSON a path and method answer with on success. */
export type ResponseOf<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { responses: infer R } ? Ok<R> : never;
/** The JSON body a path and method take. */
export type BodyOf<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends {
  requestBody?: { content: { 'application/json': infer B } };
}
  ? B
  : never;

export type Me = ResponseOf<'/api/v1/auth/me', 'get'>;
export type TenantSettings = ResponseOf<'/api/v1/settings/tenant', 'get'>;
export type SettingsPatch = BodyOf<'/api/v1/settings/tenant', 'put'>;
export type Tool = TenantSettings['tools'][number];
export type SigningSecret = ResponseOf<'/api/v1/settings/signing-secret', 'get'>;
export type DocumentView = ResponseOf<'/api/v1/documents/{id}', 'get'>;
export type SearchHit = ResponseOf<'/api/v1/knowledge/search', 'post'>['results'][number];
export type CallSummary = ResponseOf<'/api/v1/calls', 'get'>['items'][number];
export type CallDetail = ResponseOf<'/api/v1/calls/{id}', 'get'>;
export type Turn = ResponseOf<'/api/v1/calls/{id}/transcript', 'get'>['items'][number];
export type CallEvent = components['schemas']['CallEvent'];
export type PhoneNumber = ResponseOf<'/api/v1/phone-numbers/{id}', 'get'>;
export type ApiKey = ResponseOf<'/api/v1/api-keys', 'get'>['items'][number];
export type User = ResponseOf<'/api/v1/users/{id}', 'get'>;
export type Webhook = ResponseOf<'/api/v1/webhooks/{id}', 'get'>;
export type Delivery = ResponseOf<'/api/v1/webhooks/{id}/deliveries', 'get'>['items'][number];
export type Usage = ResponseOf<'/api/v1/usage', 'get'>;
export type TenantAdminView = ResponseOf<'/api/v1/admin/tenants', 'get'>['items'][number];
export type WebCall = ResponseOf<'/api/v1/calls/web', 'post'>;
/** Every JSON message of a web call's websocket, live transcript included (lib/live-messages.ts on the server). */
export type WebCallServerMessage = components['schemas']['WebCallServerMessage'];

/** A reply's source: the chunk, its document and where in it (lib/citation.ts on the server). */
export type Citation = components['schemas']['Citation'];

/** How a source is shown: the document's title, its heading path and page. */
export function citationLabel(c: Citation): string {
  return [c.title, ...c.heading_path].join(' › ') + (c.page ? ` (p. ${c.page})` : '');
}
