import { describe, expect, it } from 'vitest';
import { sameOriginStreamUrl } from './web-call-client';

describe('sameOriginStreamUrl', () => {
  it('keeps the path and token, on the page’s host and scheme', () => {
    const url = 'ws://127.0.0.1:8000/api/v1/calls/web/stream?token=a.b%2Bc';
    expect(sameOriginStreamUrl(url, { protocol: 'https:', host: 'console.example.com' })).toBe(
      'wss://console.example.com/api/v1/calls/web/stream?token=a.b%2Bc',
    );
    expect(sameOriginStreamUrl(url, { protocol: 'http:', host: '127.0.0.1:5173' })).toBe(
      'ws://127.0.0.1:5173/api/v1/calls/web/stream?token=a.b%2Bc',
    );
  });
});
