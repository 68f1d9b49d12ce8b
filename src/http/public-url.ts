// Our public base URL as the routes that hand out absolute URLs (TwiML, callbacks, stream URLs) see it.
import { isIP } from 'node:net';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../config.js';

/**
 * Our public base URL, for every absolute URL we hand out (TwiML, Twilio's callbacks, a browser call's stream_url)
 * and the URL Twilio signed: PUBLIC_BASE_URL. Never the request's Host header: anyone can send one, and Twilio
 * would fetch the call's TwiML from their server. Without PUBLIC_BASE_URL (development only: production refuses
 * to start with Twilio or LiveKit and none) it is the address this server listens on, 127.0.0.1 for a wildcard.
 */
export function publicBaseUrl(deps: { config: Pick<Config, 'publicBaseUrl' | 'host' | 'port'> }, request: FastifyRequest): string {
  if (deps.config.publicBaseUrl) return deps.config.publicBaseUrl;
  const bound = request.server.server.address();
  const { address, port } = bound && typeof bound === 'object' ? bound : { address: deps.config.host, port: deps.config.port };
  const host = address === '0.0.0.0' || address === '::' || address === '' ? '127.0.0.1' : address;
  return `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}
