// Who is calling: resolves `Authorization: Bearer` (an access JWT or a tenant API key) into a Principal and
// enforces the access level each route declares in `config.auth`.
import type { FastifyRequest } from 'fastify';
import type { AccountService } from '../services/accounts.js';
import { API_KEY_PREFIX, type ApiKeyService } from '../services/api-keys.js';
import type { TokenService } from '../services/tokens.js';
import { AppError } from '../lib/errors.js';

/**
 * public: anyone. tenant: a user or an API key of the tenant. tenant_write: an admin user or an API key (changes
 * to the tenant's agent and knowledge). user: a signed-in user. tenant_admin: a user with the admin role.
 * platform_admin: an operator of the whole platform.
 */
export type AuthLevel = 'public' | 'tenant' | 'tenant_write' | 'user' | 'tenant_admin' | 'platform_admin';

export type Principal =
  | { kind: 'user'; tenantId: string; userId: string; role: 'admin' | 'member'; isPlatformAdmin: boolean }
  | { kind: 'api_key'; tenantId: string; apiKeyId: string };

declare module 'fastify' {
  interface FastifyContextConfig {
    auth?: AuthLevel;
    /**
     * 'auth' puts the route under the strict brute-force limit. 'signed' (provider webhooks) takes the route out of
     * the per-IP limit: a phone provider sends every call's webhooks, for every tenant, from a few addresses, and
     * refusing one drops a call. Only requests whose signature fails count against their IP (RateLimiter.perIp).
     * 'refresh' (token refresh and logout) shares the strict limit's bucket, but only a refused token counts.
     */
    rateLimit?: 'auth' | 'signed' | 'refresh';
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export class Authenticator {
  constructor(
    private readonly tokens: TokenService,
    private readonly accounts: AccountService,
    private readonly apiKeys: ApiKeyService,
  ) {}

  async authenticate(request: FastifyRequest): Promise<void> {
    const level = request.routeOptions.config.auth;
    if (level === undefined || level === 'public') return;
    const credential = bearerCredential(request);
    if (!credential) throw new AppError('unauthorized', 'Missing bearer credentials in the Authorization header');

    let principal: Principal;
    if (credential.startsWith(API_KEY_PREFIX)) {
      const { key } = await this.apiKeys.resolve(credential);
      principal = { kind: 'api_key', tenantId: key.tenantId, apiKeyId: key.id };
    } else {
      const claims = await this.tokens.verifyAccess(credential);
      const { user } = await this.accounts.activeUser(claims.userId, claims.tenantId);
      principal = { kind: 'user', tenantId: user.tenantId, userId: user.id, role: user.role, isPlatformAdmin: user.isPlatformAdmin };
    }
    request.principal = principal;

    if (level === 'tenant') return;
    if (level === 'tenant_write') {
      if (principal.kind === 'user' && principal.role !== 'admin')
        throw new AppError('forbidden', 'Only an admin of this tenant or an API key may do this');
      return;
    }
    if (principal.kind !== 'user') throw new AppError('forbidden', 'This endpoint needs a signed-in user, not an API key');
    if (level === 'tenant_admin' && principal.role !== 'admin') {
      throw new AppError('forbidden', 'Only an admin of this tenant may do this');
    }
    if (level === 'platform_admin' && !principal.isPlatformAdmin) {
      throw new AppError('forbidden', 'Only platform administrators may do this');
    }
  }

  /**
   * Throws (account_disabled, tenant_suspended, invalid_token) unless the principal may still act: for what outlives
   * its request (a websocket), checked again on each message so a deactivation or suspension takes effect at once.
   */
  async recheck(principal: Principal): Promise<void> {
    if (principal.kind === 'api_key') await this.apiKeys.assertActive(principal.apiKeyId);
    else await this.accounts.activeUser(principal.userId, principal.tenantId);
  }
}

/**
 * The bearer credential: the Authorization header, or for a websocket opened by a browser (which cannot set
 * headers) the subprotocol list `bearer, <token>`, as Deepgram and Kubernetes do. Never the query string: URLs
 * end up in logs.
 */
function bearerCredential(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  if (header !== undefined) return header.match(/^Bearer\s+(\S+)\s*$/i)?.[1];
  const protocols = request.headers['sec-websocket-protocol'];
  if (request.headers.upgrade?.toLowerCase() !== 'websocket' || typeof protocols !== 'string') return undefined;
  const [scheme, token] = protocols.split(',').map((p) => p.trim());
  return scheme?.toLowerCase() === 'bearer' && token ? token : undefined;
}

/** The caller's principal on a route declared with any level but public. */
export function principalOf(request: FastifyRequest): Principal {
  if (!request.principal) throw new AppError('unauthorized', 'Not authenticated');
  return request.principal;
}

/** The signed-in user on a route declared `user`, `tenant_admin` or `platform_admin`. */
export function userOf(request: FastifyRequest): Extract<Principal, { kind: 'user' }> {
  const p = principalOf(request);
  if (p.kind !== 'user') throw new AppError('forbidden', 'This endpoint needs a signed-in user');
  return p;
}
