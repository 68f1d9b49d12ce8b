// The socket and first bytes of each websocket upgrade request, kept from the server's 'upgrade' event for a route
// that hands the connection on before its handshake (the Twilio media stream goes to the media process). The
// websocket plugin keeps them too, under private symbols; this is the same, by a documented event.
import type { IncomingMessage, Server } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';

const upgrades = new WeakMap<IncomingMessage, { socket: Duplex; head: Buffer }>();

/** Before the websocket plugin's own listener, which routes the request at once (prepended). */
export function keepUpgrades(server: Server): void {
  server.prependListener('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => upgrades.set(req, { socket, head }));
}

/**
 * The request's connection, when it is an upgrade over a real socket (a test's injected websocket is a stream with
 * no file descriptor to hand over): the caller owns it from now on.
 */
export function takeUpgradeSocket(req: IncomingMessage): { socket: Socket; head: Buffer } | undefined {
  const up = upgrades.get(req);
  upgrades.delete(req);
  return up && up.socket instanceof Socket ? { socket: up.socket, head: up.head } : undefined;
}
