import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { twilioSignature, verifyTwilioBodySignature, verifyTwilioSignature } from './twilio-signature.js';

describe('Twilio request signatures', () => {
  it('matches the published test vector', () => {
    // From protocols.md 1.1: token 12345, https://example.com/voice, CallSid=CA1, From=+1555.
    expect(twilioSignature('12345', 'https://example.com/voice', { From: '+1555', CallSid: 'CA1' })).toBe('gVQFB32LVIBlKnVDsJUmY5defnk=');
  });

  it('accepts the right signature, with or without the default port, and nothing else', () => {
    const params = { CallSid: 'CA1', From: '+15550001111', To: '+15550002222' };
    const sig = twilioSignature('tok', 'https://voice.example.com/api/v1/webhooks/twilio/voice', params);
    expect(verifyTwilioSignature('tok', sig, 'https://voice.example.com/api/v1/webhooks/twilio/voice', params)).toBe(true);
    expect(verifyTwilioSignature('tok', sig, 'https://voice.example.com:443/api/v1/webhooks/twilio/voice', params)).toBe(true);
    expect(verifyTwilioSignature('other', sig, 'https://voice.example.com/api/v1/webhooks/twilio/voice', params)).toBe(false);
    expect(
      verifyTwilioSignature('tok', sig, 'https://voice.example.com/api/v1/webhooks/twilio/voice', { ...params, To: '+15550003333' }),
    ).toBe(false);
    expect(verifyTwilioSignature('tok', sig, 'http://voice.example.com/api/v1/webhooks/twilio/voice', params)).toBe(false);
    expect(verifyTwilioSignature('tok', undefined, 'https://voice.example.com/api/v1/webhooks/twilio/voice', params)).toBe(false);
  });

  it('signs repeated parameters de-duplicated and sorted', () => {
    expect(twilioSignature('t', 'https://x.test/a', { A: ['2', '1', '2'] })).toBe(
      twilioSignature('t', 'https://x.test/a', { A: ['1', '2'] }),
    );
  });

  it('checks the bodySHA256 variant: URL signed without parameters, body hash in the URL', () => {
    const body = JSON.stringify({ CallSid: 'CA1' });
    const url = `https://x.test/hook?bodySHA256=${createHash('sha256').update(body).digest('hex')}`;
    const sig = twilioSignature('tok', url);
    expect(verifyTwilioBodySignature('tok', sig, url, body)).toBe(true);
    expect(verifyTwilioBodySignature('tok', sig, url, `${body} `)).toBe(false);
    expect(verifyTwilioBodySignature('tok', sig, 'https://x.test/hook', body)).toBe(false);
  });
});
