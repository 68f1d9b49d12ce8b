// The TwiML documents we answer Twilio with (media stream, transfers, a last word), as compact XML strings.
// Escaping follows what twilio-node's own VoiceResponse (xmlbuilder2) writes, so either renders the same bytes.

const DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>';

// XML 1.0 cannot carry most C0 controls, lone surrogates or U+FFFE/U+FFFF even escaped; text from a model or a
// caller's settings could hold them, and one of them would make Twilio reject the whole document.
const NOT_XML = /[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

function escapeText(value: string): string {
  return value.replace(NOT_XML, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/\r/g, '&#xD;');
}

// Whitespace other than spaces is written as character references: a parser would otherwise fold it into spaces.
function escapeAttr(value: string): string {
  return value
    .replace(NOT_XML, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/"/g, '&quot;')
    .replace(/\n/g, '&#xA;')
    .replace(/\r/g, '&#xD;')
    .replace(/\t/g, '&#x9;');
}

type Attrs = Record<string, string | boolean | undefined>;

function el(name: string, attrs: Attrs = {}, children = ''): string {
  let out = `<${name}`;
  for (const [key, value] of Object.entries(attrs)) if (value !== undefined) out += ` ${key}="${escapeAttr(String(value))}"`;
  return children === '' ? `${out}/>` : `${out}>${children}</${name}>`;
}

const response = (...verbs: string[]) => `${DECLARATION}${el('Response', {}, verbs.join(''))}`;

/**
 * Bidirectional media stream: the call stays on our websocket until it closes. Per-call data travels as
 * <Parameter>s (they arrive in the `start` message) because Twilio does not promise to keep a query string.
 */
export function connectStream(wsUrl: string, parameters: Record<string, string> = {}): string {
  if (!/^wss?:\/\//i.test(wsUrl)) throw new Error(`media stream URL must be ws:// or wss://, got ${wsUrl}`);
  const params = Object.entries(parameters).map(([name, value]) => el('Parameter', { name, value }));
  return response(el('Connect', {}, el('Stream', { url: wsUrl }, params.join(''))));
}

// Twilio stamps only X- headers (not X-Twilio-*) and a few standard ones onto the INVITE; others are dropped
// with a warning, so a misspelt header would silently lose the data it carried (errors 13252, 32113).
const STANDARD_SIP_HEADERS = new Set(['user-to-user', 'remote-party-id', 'p-preferred-identity', 'p-called-party-id']);
const SIP_HEADERS_MAX_CHARS = 1024; // error 21227

export interface DialSipOptions {
  username?: string;
  password?: string;
  /** Keep the caller hearing ringing (not silence) until the SIP side answers. */
  answerOnBridge?: boolean;
}

/** Transfer to a SIP URI; `headers` ride on the URI's header part (`?X-Name=value&...`) into the INVITE. */
export function dialSip(sipUri: string, headers: Record<string, string> = {}, options: DialSipOptions = {}): string {
  if (!/^sips?:/i.test(sipUri)) throw new Error(`not a SIP URI: ${sipUri}`);
  const parts: string[] = [];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    const allowed =
      /^[A-Za-z0-9-]+$/.test(name) && ((lower.startsWith('x-') && !lower.startsWith('x-twilio')) || STANDARD_SIP_HEADERS.has(lower));
    if (!allowed) throw new Error(`Twilio would drop SIP header ${name}: use an X- prefix (not X-Twilio)`);
    parts.push(`${encodeURIComponent(name)}=${encodeURIComponent(value)}`);
  }
  const headerPart = parts.join('&');
  if (headerPart.length >= SIP_HEADERS_MAX_CHARS) throw new Error(`SIP headers must be under ${SIP_HEADERS_MAX_CHARS} characters`);
  const uri = headerPart ? `${sipUri}${sipUri.includes('?') ? '&' : '?'}${headerPart}` : sipUri;
  const sip = el('Sip', { username: options.username, password: options.password }, escapeText(uri));
  return response(el('Dial', { answerOnBridge: options.answerOnBridge }, sip));
}

/** Transfer to a phone number; `callerId` must be one of our Twilio numbers (or the caller's own number). */
export function dialNumber(to: string, callerId?: string): string {
  return response(el('Dial', { callerId }, el('Number', {}, escapeText(to))));
}

export interface SayOptions {
  voice?: string;
  language?: string;
}

/** A last sentence before hanging up (errors, closing hours) when no agent can take the call. */
export function sayAndHangup(text: string, options: SayOptions = {}): string {
  return response(el('Say', { voice: options.voice, language: options.language }, escapeText(text)), el('Hangup'));
}
