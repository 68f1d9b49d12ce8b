// TwiML builders: exact documents, escaping of hostile text, and byte-for-byte agreement with twilio-node's renderer.
import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import { connectStream, dialNumber, dialSip, sayAndHangup } from './twiml.js';

const XML = '<?xml version="1.0" encoding="UTF-8"?>';
const HOSTILE = `Tom & Jerry <b>"quoted"</b> 'single' > \t tab\nline\r\n</Say><Hangup/>`;

// What an XML parser would read back: the escaped value must sit between its quotes (or tags) with nothing else.
const decode = (s: string) =>
  s.replace(/&(amp|lt|gt|quot|apos|#x[0-9a-f]+|#\d+);/gi, (_, e: string) =>
    e[0] === '#'
      ? String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : Number(e.slice(1)))
      : ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" } as Record<string, string>)[e]!,
  );
const attrOf = (xml: string, el: string, name: string) => decode(new RegExp(`<${el}\\b[^>]*? ${name}="([^"<]*)"`).exec(xml)![1]!);
const textOf = (xml: string, el: string) => decode(new RegExp(`<${el}\\b[^>]*>([^<]*)</${el}>`).exec(xml)![1]!);

describe('connectStream', () => {
  it('writes <Connect><Stream> with one <Parameter> per entry', () => {
    expect(connectStream('wss://agent.example.com/twilio/media', { tenantId: 't_42', callId: 'c_9' })).toBe(
      `${XML}<Response><Connect><Stream url="wss://agent.example.com/twilio/media"><Parameter name="tenantId" value="t_42"/><Parameter name="callId" value="c_9"/></Stream></Connect></Response>`,
    );
  });

  it('escapes attribute values so a value cannot leave its attribute', () => {
    const xml = connectStream('wss://a.test/m?x=1&y=2', { 'we"ird': HOSTILE });
    expect(xml).toContain('url="wss://a.test/m?x=1&amp;y=2"');
    expect(xml).not.toContain('</Say>');
    // Read back exactly, tabs and line breaks included (as character references, so no parser folds them).
    expect(attrOf(xml, 'Parameter', 'value')).toBe(HOSTILE);
    expect(attrOf(xml, 'Parameter', 'name')).toBe('we"ird');
    expect(attrOf(xml, 'Stream', 'url')).toBe('wss://a.test/m?x=1&y=2');
  });

  it('refuses a non-websocket URL', () => {
    expect(() => connectStream('https://agent.example.com/media', {})).toThrow(/ws/);
  });

  it('renders the same bytes as twilio-node', () => {
    const r = new twilio.twiml.VoiceResponse();
    const stream = r.connect().stream({ url: 'wss://a.test/m?x=1&y="2"' });
    stream.parameter({ name: 'token', value: HOSTILE });
    stream.parameter({ name: 'callId', value: 'c_1' });
    expect(connectStream('wss://a.test/m?x=1&y="2"', { token: HOSTILE, callId: 'c_1' })).toBe(r.toString());
  });
});

describe('dialSip', () => {
  it('puts headers on the URI, URL-encoded, with & escaped for XML', () => {
    expect(dialSip('sip:+15550001111@example.sip.livekit.cloud;transport=tcp', { 'X-Call-Id': 'c 9', 'X-Tenant': 'a&b=c' })).toBe(
      `${XML}<Response><Dial><Sip>sip:+15550001111@example.sip.livekit.cloud;transport=tcp?X-Call-Id=c%209&amp;X-Tenant=a%26b%3Dc</Sip></Dial></Response>`,
    );
  });

  it('appends to a URI that already has headers, and writes credentials and answerOnBridge', () => {
    const xml = dialSip('sip:a@b.test?X-A=1', { 'X-B': '2' }, { username: 'u', password: 'p"w', answerOnBridge: true });
    expect(xml).toBe(
      `${XML}<Response><Dial answerOnBridge="true"><Sip username="u" password="p&quot;w">sip:a@b.test?X-A=1&amp;X-B=2</Sip></Dial></Response>`,
    );
  });

  it('refuses headers Twilio would drop, oversized headers, and non-SIP URIs', () => {
    expect(() => dialSip('sip:a@b.test', { Customer: '1' })).toThrow(/X-/);
    expect(() => dialSip('sip:a@b.test', { 'X-Twilio-Foo': '1' })).toThrow(/X-Twilio/);
    expect(() => dialSip('sip:a@b.test', { 'X-Bad Name': '1' })).toThrow();
    expect(() => dialSip('sip:a@b.test', { 'X-Big': 'x'.repeat(1100) })).toThrow(/1024/);
    expect(() => dialSip('tel:+15550001111', {})).toThrow(/SIP URI/);
    expect(dialSip('sip:a@b.test', { 'User-to-User': '00ff' })).toContain('?User-to-User=00ff');
  });

  it('renders the same bytes as twilio-node', () => {
    const r = new twilio.twiml.VoiceResponse();
    r.dial({ answerOnBridge: true }).sip({ username: 'u', password: 'p' }, 'sip:a@b.test?X-Id=1&X-T=2');
    expect(dialSip('sip:a@b.test', { 'X-Id': '1', 'X-T': '2' }, { username: 'u', password: 'p', answerOnBridge: true })).toBe(r.toString());
  });
});

describe('dialNumber', () => {
  it('writes <Dial><Number>, with callerId only when given', () => {
    expect(dialNumber('+15550002222')).toBe(`${XML}<Response><Dial><Number>+15550002222</Number></Dial></Response>`);
    expect(dialNumber('+15550002222', '+15550001111')).toBe(
      `${XML}<Response><Dial callerId="+15550001111"><Number>+15550002222</Number></Dial></Response>`,
    );
  });
});

describe('sayAndHangup', () => {
  it('says the text and hangs up', () => {
    expect(sayAndHangup('Goodbye.')).toBe(`${XML}<Response><Say>Goodbye.</Say><Hangup/></Response>`);
    expect(sayAndHangup('Au revoir.', { voice: 'Polly.Lea', language: 'fr-FR' })).toBe(
      `${XML}<Response><Say voice="Polly.Lea" language="fr-FR">Au revoir.</Say><Hangup/></Response>`,
    );
  });

  it('escapes text so it cannot close <Say> or add verbs, and drops characters XML cannot carry', () => {
    const xml = sayAndHangup(`${HOSTILE}\u0000\u0007\uFFFF\uD800 end`);
    expect(xml.match(/<Hangup\/>/g)).toHaveLength(1);
    expect(xml).toContain('Tom &amp; Jerry &lt;b&gt;"quoted"&lt;/b&gt;');
    for (const ch of ['\u0000', '\u0007', '\uFFFF', '\uD800']) expect(xml).not.toContain(ch);
    expect(textOf(xml, 'Say')).toBe(`${HOSTILE} end`);
  });

  it('renders the same bytes as twilio-node', () => {
    const r = new twilio.twiml.VoiceResponse();
    r.say({ voice: 'alice' }, HOSTILE);
    r.hangup();
    expect(sayAndHangup(HOSTILE, { voice: 'alice' })).toBe(r.toString());
  });
});
