import type { FastifyError } from 'fastify';
import { describe, expect, it } from 'vitest';
import { classify } from './errors.js';

const as = (e: unknown) => e as FastifyError;

describe('classify', () => {
  it('maps a stack overflow from input to 400, not 500', () => {
    let overflow: unknown;
    const recurse = (n: number): number => recurse(n + 1) + 1;
    try {
      recurse(0);
    } catch (e) {
      overflow = e;
    }
    expect(classify(as(overflow), false)).toMatchObject({ status: 400, code: 'bad_request' });
  });

  it('maps PostgreSQL data exceptions a value causes to 400, however the driver wraps them', () => {
    for (const code of ['22021', '22003', '22001', '22P02', '22P05', '54000']) {
      const driver = Object.assign(new Error('invalid byte sequence for encoding "UTF8": 0x00'), { code });
      const wrapped = Object.assign(new Error('Failed query: insert into ...'), { cause: driver });
      for (const err of [driver, wrapped]) expect(classify(as(err), false), code).toMatchObject({ status: 400, code: 'bad_request' });
    }
    // Other database failures stay server errors, and their text stays hidden.
    const down = Object.assign(new Error('Failed query'), { cause: Object.assign(new Error('connection terminated'), { code: '57P01' }) });
    expect(classify(as(down), false)).toEqual({ status: 500, code: 'internal_error', message: 'Internal error' });
    expect(classify(as(new RangeError('Invalid array length')), false).status).toBe(500);
  });
});
