import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.js';
import { MemoryTransport } from './memory.js';

describe('MemoryTransport', () => {
  it('a hang-up before the session listens is still heard (a caller who leaves while the agent is loading)', () => {
    const transport = new MemoryTransport(16000, 20, new ManualClock());
    transport.hangup();
    const heard: (string | undefined)[] = [];
    transport.onHangup((violation) => heard.push(violation ?? 'hung up'));
    transport.hangup('again');
    expect(heard).toEqual(['hung up']);
  });
});
