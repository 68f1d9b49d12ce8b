// The chat websocket (/api/v1/chat/ws) without React: one socket is one session; the reply streams as deltas, then
// `reply` with citations. Browsers authenticate with the subprotocols `bearer, <access token>`.
import { getAccessToken } from '../api/auth';
import { api, must } from '../api/client';
import type { Citation } from '../api/types';

export type ChatEvent =
  | { type: 'session'; session_id: string; greeting: string | null }
  | { type: 'delta'; text: string }
  | { type: 'reply'; reply: string; citations: Citation[]; ended: boolean }
  | { type: 'error'; error: { code: string; message: string } }
  | { type: 'closed'; reason: string };

export async function openChat(
  onEvent: (e: ChatEvent) => void,
  location: { protocol: string; host: string } = window.location,
): Promise<{ send(text: string): void; close(): void }> {
  // A socket cannot refresh on 401: one request through the client first (it refreshes an expired token).
  await must(api.GET('/api/v1/auth/me'));
  const token = getAccessToken();
  if (!token) throw new Error('You are signed out: log in again');
  const url = `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/api/v1/chat/ws`;
  const socket = new WebSocket(url, ['bearer', token]);
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error('The chat connection failed'));
  });
  socket.onmessage = (m: MessageEvent<string>) => {
    try {
      onEvent(JSON.parse(m.data) as ChatEvent);
    } catch {
      // Not JSON: nothing the page can show.
    }
  };
  socket.onclose = (e) => onEvent({ type: 'closed', reason: e.reason || 'closed' });
  return {
    send: (text) => socket.readyState === WebSocket.OPEN && socket.send(JSON.stringify({ type: 'message', text })),
    close: () => socket.close(1000),
  };
}
