// The console's security and accessibility in Debian's Chromium (one service, one browser for the file):
// - what a tenant stores (a document's title and text, a chat turn, its business name) renders as text: markup in
//   it opens no dialog, adds no element, and reads literally on the page;
// - the console's responses carry the CSP and the usual security headers;
// - the refresh cookie is HttpOnly, SameSite=Strict and scoped to the auth routes, page scripts cannot read it, and
//   a page on another site neither sends it nor gets a cookie-based refresh through;
// - another tenant's call URL shows "not found";
// - every page (sign-in, Agent, Knowledge, Talk, Calls, Call, Phone numbers, API keys, Users, Webhooks, Usage,
//   Tenants) has no serious or critical axe-core violation, and is screenshot at 1280x800 (some at 390x844 too)
//   into test/artifacts/console/ (git-ignored; docs/screenshots/ holds copies chosen by hand).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  api,
  axeViolations,
  isSerious,
  type ConsoleService,
  launchChromium,
  shot,
  signUpInPage,
  startService,
  until,
} from './console-browser-kit.js';
import { WIRE_PASS } from './helpers.js';

const IMG = '<img src=x onerror=alert(1)>';
const SCRIPT = '<script>alert(2)</script>';
const HOSTILE = `Opening hours ${IMG} and ${SCRIPT} are on the door.`;
const PASSWORD = 'correct horse battery';
const ROOT = { email: 'root@example.com', password: 'platform admin password' };
const CLINIC =
  '# Opening hours\n\nThe Sunrise clinic opens at seven thirty on weekdays and at nine on Saturdays.\n\n' +
  '# Parking\n\nFree parking is in the garage on Elm Street, behind the clinic. Bring your ticket to the front desk.';

let svc: ConsoleService | undefined;
let browser: Browser | undefined;
/** Tenant B: stores markup everywhere it can. */
let mallory: { token: string; context: BrowserContext; page: Page; callId: string } | undefined;
/** Tenant A: an ordinary clinic (the pages' accessibility and screenshots). */
let sunrise: { token: string; context: BrowserContext; page: Page; callId: string } | undefined;
const dialogs: string[] = [];

function watch(page: Page): Page {
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  return page;
}

async function tenant(business: string, email: string) {
  const context = await browser!.newContext({ viewport: { width: 1280, height: 800 } });
  const page = watch(await context.newPage());
  const token = await signUpInPage(page, svc!.base, { business, email, password: PASSWORD });
  return { context, page, token };
}

async function documentReady(token: string, title: string): Promise<void> {
  await until(
    `${title} ready`,
    async () => {
      const docs = await api<{ items: { title: string; status: string }[] }>(svc!.base, token, 'GET', '/api/v1/documents');
      return docs.items.find((d) => d.title === title)?.status === 'ready';
    },
    120_000,
  );
}

beforeAll(async () => {
  if (WIRE_PASS) return;
  svc = await startService({
    PLATFORM_ADMIN_EMAIL: ROOT.email,
    PLATFORM_ADMIN_PASSWORD: ROOT.password,
    // All of the test's sign-ups and logins come from 127.0.0.1: the auth routes' limit (10 a minute per IP) is
    // for guessing, not for this test. (Page reloads spend refreshes, which count only when refused.)
    RATE_LIMIT_AUTH_PER_IP_PER_MINUTE: '1000',
  });
  browser = await launchChromium();
  const { base } = svc;

  const m = await tenant(`Mallory ${IMG}`, `mallory-${Date.now()}@example.com`);
  await api(base, m.token, 'POST', '/api/v1/documents', { title: `Notes ${SCRIPT}`, content: HOSTILE });
  const chat = await api<{ session_id: string }>(base, m.token, 'POST', '/api/v1/chat', { message: `Hi ${IMG} ${SCRIPT}` });
  mallory = { ...m, callId: chat.session_id };

  const s = await tenant('Sunrise Clinic', `owner-${Date.now()}@example.com`);
  await api(base, s.token, 'POST', '/api/v1/documents', { title: 'clinic.md', content: CLINIC });
  await documentReady(s.token, 'clinic.md');
  const c = await api<{ session_id: string }>(base, s.token, 'POST', '/api/v1/chat', { message: 'Where is the free parking?' });
  await api(base, s.token, 'POST', '/api/v1/chat', { session_id: c.session_id, message: 'When do you open on Saturdays?' });
  await api(base, s.token, 'POST', '/api/v1/api-keys', { name: 'Website widget' });
  await api(base, s.token, 'POST', '/api/v1/users', { email: `desk-${Date.now()}@example.com`, password: PASSWORD, role: 'member' });
  sunrise = { ...s, callId: c.session_id };
  await documentReady(m.token, `Notes ${SCRIPT}`);
}, 600_000);

afterAll(async () => {
  await browser?.close();
  await svc?.stop();
});

/** Elements the hostile text would have created, had it been parsed as HTML. */
const injected = (page: Page) =>
  page.evaluate(
    () =>
      document.querySelectorAll('img[src="x"], img[onerror]').length +
      [...document.querySelectorAll('script')].filter((s) => s.textContent?.includes('alert')).length,
  );

async function textOf(page: Page, selector = 'main'): Promise<string> {
  return page.locator(selector).first().innerText();
}

describe.skipIf(WIRE_PASS)('the console in Chromium: security', () => {
  it('renders a document, a chat transcript and a business name with markup in them as text', async () => {
    const { page, callId } = mallory!;
    const { base } = svc!;

    // The header shows the business name as typed.
    await page.goto(`${base}/agent`);
    await page.getByRole('heading', { name: 'Agent', exact: true }).waitFor();
    expect(await page.locator('header').innerText()).toContain(`Mallory ${IMG}`);

    // Knowledge: the title in the list, the text in the search playground (split by the highlighting).
    await page.goto(`${base}/knowledge`);
    await page.getByText(`Notes ${SCRIPT}`, { exact: true }).first().waitFor({ timeout: 30_000 });
    await page.getByLabel('Question').fill('opening hours door');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await until('the hostile chunk in the results', async () => (await textOf(page)).includes(HOSTILE), 30_000);
    expect(await injected(page)).toBe(0);
    await shot(page, 'security-knowledge');

    // Calls: the chat session is listed; its page shows the caller's turn literally.
    await page.goto(`${base}/calls/${callId}`);
    await page.getByText(`Hi ${IMG} ${SCRIPT}`, { exact: true }).first().waitFor({ timeout: 30_000 });
    expect(await injected(page)).toBe(0);
    await shot(page, 'security-call');

    // Talk's text chat: a typed message and the agent's streamed answer.
    await page.goto(`${base}/talk`);
    await page.getByRole('tab', { name: 'Text chat' }).click();
    await page.getByLabel('Message').fill(`Again ${IMG} ${SCRIPT}`);
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByText(`Again ${IMG} ${SCRIPT}`, { exact: true }).waitFor({ timeout: 30_000 });
    await page.getByText('Agent', { exact: true }).first().waitFor({ timeout: 60_000 });
    expect(await injected(page)).toBe(0);

    expect(dialogs).toEqual([]);
  }, 240_000);

  it('serves the console with its Content-Security-Policy and security headers', async () => {
    const { page } = mallory!;
    const res = await page.goto(`${svc!.base}/calls`);
    const headers = res!.headers();
    const csp = headers['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("object-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    expect(headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'x-frame-options': 'DENY', 'referrer-policy': 'no-referrer' });
    // A script file of the console carries it too.
    const script = await page.locator('script[src]').first().getAttribute('src');
    const asset = await fetch(new URL(script!, svc!.base));
    expect(asset.headers.get('content-security-policy')).toBe(csp);
  });

  it('keeps the refresh token in an HttpOnly, SameSite=Strict cookie that another site neither sends nor spends', async () => {
    const { context, page } = mallory!;
    const { port } = svc!;
    // (context.cookies(url) filters by path: the cookie's is /api/v1/auth.)
    const cookies = await context.cookies();
    const refresh = cookies.find((c) => c.name === 'va_refresh');
    expect(refresh).toMatchObject({ httpOnly: true, sameSite: 'Strict', path: '/api/v1/auth', domain: '127.0.0.1' });
    expect(await page.evaluate(() => document.cookie)).not.toContain('va_refresh');

    // Another site: a page at http://localhost:<another port> (a different site from 127.0.0.1 for cookies) that
    // asks the service to refresh, as a form would (no custom header) and as a script would (with them).
    const attacker: Server = createServer((_req, res) =>
      res.writeHead(200, { 'content-type': 'text/html' }).end('<title>elsewhere</title>'),
    );
    await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
    try {
      const evil = watch(await context.newPage());
      await evil.goto(`http://localhost:${(attacker.address() as AddressInfo).port}/`);
      const sent: Record<string, string>[] = [];
      evil.on('request', (r) => {
        if (r.url().includes('/api/v1/auth/')) void r.allHeaders().then((h) => sent.push(h));
      });
      const target = `http://127.0.0.1:${port}/api/v1/auth/refresh`;
      const simple = await evil.evaluate(async (url) => {
        // The request leaves (no-cors), but its answer is opaque to the page.
        const r = await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', body: '{}' });
        return r.type;
      }, target);
      expect(simple).toBe('opaque');
      const withHeaders = await evil.evaluate(async (url) => {
        try {
          await fetch(url, {
            method: 'POST',
            credentials: 'include',
            headers: { 'content-type': 'application/json', 'X-Auth-Mode': 'cookie', 'X-CSRF': '1' },
            body: '{}',
          });
          return 'answered';
        } catch {
          return 'refused';
        }
      }, target);
      expect(withHeaders).toBe('refused');
      await until('the cross-site request seen', async () => sent.length > 0, 10_000);
      for (const h of sent) expect(h.cookie ?? '').not.toContain('va_refresh');
      await evil.close();

      // The same request from the console's own page carries the cookie (so the check above means something).
      const own: Record<string, string>[] = [];
      page.on('request', (r) => {
        if (r.url().endsWith('/api/v1/auth/me')) void r.allHeaders().then((h) => own.push(h));
      });
      await page.evaluate(async () => void (await fetch('/api/v1/auth/me', { credentials: 'same-origin' })));
      await until('the same-site request seen', async () => own.length > 0, 10_000);
      expect(own[0]!.cookie ?? '').toContain('va_refresh');
    } finally {
      attacker.close();
    }
    // The session survived: the cookie was neither spent nor cleared by the other site.
    await page.reload();
    await page.getByRole('button', { name: 'Log out' }).waitFor({ timeout: 30_000 });
  }, 120_000);

  it('shows "not found" for another tenant’s call', async () => {
    const { page } = sunrise!;
    await page.goto(`${svc!.base}/calls/${mallory!.callId}`);
    await page.getByRole('alert').filter({ hasText: 'Not found' }).waitFor({ timeout: 30_000 });
    expect(await textOf(page)).not.toContain('Hi ');
    await shot(page, 'security-other-tenant-call');
  }, 60_000);
});

describe.skipIf(WIRE_PASS)('the console in Chromium: every page', () => {
  const found: string[] = [];

  /** The layout's transitions (the navigation sliding away at phone width) are over. */
  const settled = (page: Page) =>
    until('the transitions over', () => page.evaluate(() => document.getAnimations().every((a) => a.playState !== 'running')), 10_000);

  async function check(page: Page, name: string, phone = false): Promise<void> {
    await until('the page loaded', async () => (await page.locator('[aria-busy=true]').count()) === 0, 30_000);
    await shot(page, `page-${name}`);
    const violations = await axeViolations(page);
    const minor = violations.filter((v) => !isSerious(v)).map((v) => `${v.id} (${v.impact})`);
    console.log(`[console-a11y] ${name}: ${violations.length} axe violations${minor.length ? `; minor: ${minor.join(', ')}` : ''}`);
    for (const v of violations.filter(isSerious))
      found.push(`${name}: ${v.id} (${v.impact}) ${v.help} at ${JSON.stringify(v.nodes.map((n) => n.target))}`);
    if (phone) {
      await page.setViewportSize({ width: 390, height: 844 });
      await settled(page);
      await shot(page, `page-${name}-phone`);
      for (const v of (await axeViolations(page)).filter(isSerious)) found.push(`${name} (phone): ${v.id} (${v.impact}) ${v.help}`);
      await page.setViewportSize({ width: 1280, height: 800 });
      await settled(page);
    }
  }

  it('has no serious or critical accessibility violation on any page (screenshots of each)', async () => {
    const { base } = svc!;
    const { page, callId } = sunrise!;
    const visit = async (path: string, heading: string, name: string, phone = false) => {
      await page.goto(`${base}${path}`);
      await page
        .getByRole('heading', { name: heading, exact: true })
        .first()
        .waitFor({ timeout: 30_000 })
        .catch(async (err) => {
          await shot(page, `page-${name}-failed`);
          throw err;
        });
      await check(page, name, phone);
    };
    await visit('/agent', 'Agent', 'agent', true);
    await visit('/knowledge', 'Knowledge', 'knowledge', true);
    await page.getByText('ready', { exact: false }).first().waitFor({ timeout: 30_000 });
    await visit('/talk', 'Talk', 'talk', true);
    await visit('/calls', 'Calls', 'calls', true);
    await page.locator(`a[href="/calls/${callId}"]`).first().waitFor({ timeout: 30_000 });
    await visit(`/calls/${callId}`, 'Call', 'call', true);
    await visit('/phone-numbers', 'Phone numbers', 'phone-numbers');
    await visit('/api-keys', 'API keys', 'api-keys');
    await visit('/users', 'Users', 'users');
    await visit('/webhooks', 'Webhooks', 'webhooks');
    await visit('/usage', 'Usage', 'usage');

    // Signed out: the sign-in pages.
    const anon = watch(await browser!.newPage({ viewport: { width: 1280, height: 800 } }));
    await anon.goto(`${base}/login`);
    await anon.getByRole('button', { name: 'Log in' }).waitFor({ timeout: 30_000 });
    await check(anon, 'login', true);
    await anon.goto(`${base}/signup`);
    await anon.getByRole('button', { name: 'Sign up' }).waitFor({ timeout: 30_000 });
    await check(anon, 'signup');

    // A platform administrator: the tenants page.
    await anon.goto(`${base}/login`);
    await anon.getByLabel('Email').fill(ROOT.email);
    await anon.getByLabel('Password').fill(ROOT.password);
    await anon.getByRole('button', { name: 'Log in' }).click();
    await anon.getByRole('link', { name: 'Tenants' }).click();
    await anon.getByRole('heading', { name: 'Tenants', exact: true }).waitFor({ timeout: 30_000 });
    await anon.getByText('Sunrise Clinic').first().waitFor({ timeout: 30_000 });
    // Another tenant's name with markup in it, as text here too.
    await anon.getByText(`Mallory ${IMG}`, { exact: true }).waitFor();
    expect(await injected(anon)).toBe(0);
    await check(anon, 'tenants', true);
    await anon.close();

    expect(found).toEqual([]);
    expect(dialogs).toEqual([]);
  }, 300_000);
});
