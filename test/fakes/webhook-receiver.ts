// A tenant's webhook receiver: a local HTTP server that verifies every request's Standard Webhooks signature twice,
// with its own reading of the spec (HMAC-SHA256 keyed with the base64-decoded part after `whsec_`, over
// "id.timestamp.body", any of the space-separated `v1,` signatures) and with the standard's own verifier library
// (`standardwebhooks`, reached through @anthropic-ai/sdk's dependencies). Answers are programmable per path.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface ReceivedWebhook {
  path: string;
  headers: IncomingHttpHeaders;
  id: string;
  timestamp: number;
  body: string;
  event: { id: string; type: string; created_at: string; tenant_id: string; data: Record<string, unknown> };
  /** Which of the path's secrets verified it (by both verifiers); empty when none. */
  verifiedBy: string[];
  /** The status it was answered with (none when `hung`). */
  status: number;
  /** Held open, never answered. */
  hung: boolean;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
  /** Never answer (the request hangs until the client gives up). */
  hang?: boolean;
}

const TOLERANCE_S = 5 * 60;

/** The spec, read independently of src/lib/webhook-signature.ts. */
export function verifiesBySpec(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  const id = headers['webhook-id'];
  const ts = headers['webhook-timestamp'];
  const sigs = headers['webhook-signature'];
  if (typeof id !== 'string' || typeof ts !== 'string' || typeof sigs !== 'string') return false;
  if (!/^\d+$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > TOLERANCE_S) return false;
  if (!secret.startsWith('whsec_')) return false;
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${ts}.${body}`).digest();
  return sigs.split(' ').some((s) => {
    const [version, sig] = s.split(',');
    if (version !== 'v1' || !sig) return false;
    const got = Buffer.from(sig, 'base64');
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

function verifiesByLibrary(secret: string, headers: IncomingHttpHeaders, body: string): boolean {
  try {
    new Webhook(secret).verify(body, {
      'webhook-id': String(headers['webhook-id']),
      'webhook-timestamp': String(headers['webhook-timestamp']),
      'webhook-signature': String(headers['webhook-signature']),
    });
    return true;
  } catch {
    return false;
  }
}

export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  /** The secrets each path verifies with (set from the create and rotate responses). */
  readonly secrets = new Map<string, string[]>();
  /** The answer to the n-th request (0-based) to a path; 200 by default. */
  answer: (path: string, n: number, event: ReceivedWebhook['event']) => Answer = () => ({ status: 200, body: 'ok' });
  private server: Server | undefined;
  private readonly counts = new Map<string, number>();
  base = '';

  async start(): Promise<this> {
    this.server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      const path = new URL(req.url!, 'http://x').pathname;
      const n = this.counts.get(path) ?? 0;
      this.counts.set(path, n + 1);
      const event = JSON.parse(body) as ReceivedWebhook['event'];
      const verifiedBy = (this.secrets.get(path) ?? []).filter(
        (s) => verifiesBySpec(s, req.headers, body) && verifiesByLibrary(s, req.headers, body),
      );
      const a = this.answer(path, n, event);
      this.received.push({
        path,
        headers: req.headers,
        id: String(req.headers['webhook-id']),
        timestamp: Number(req.headers['webhook-timestamp']),
        body,
        event,
        verifiedBy,
        status: a.status,
        hung: Boolean(a.hang),
      });
      if (a.hang) return;
      res.writeHead(a.status, a.headers).end(a.body ?? '');
    });
    await new Promise<void>((r) => this.server!.listen(0, '127.0.0.1', r));
    this.base = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  at(path: string): ReceivedWebhook[] {
    return this.received.filter((r) => r.path === path);
  }

  /** Answered 2xx. */
  delivered(path: string): ReceivedWebhook[] {
    return this.at(path).filter((r) => !r.hung && r.status >= 200 && r.status < 300);
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }
}
