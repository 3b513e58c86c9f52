/** The NDJSON run stream of the admin API (verify, recover): a client that hangs up is no failure. */
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { describe, it } from 'node:test';
import type { Context } from 'koa';
import { streamRun } from '../../src/ops/ndjson.js';

const fakeCtx = () => {
  const req = new EventEmitter();
  return { ctx: { req, res: { writableFinished: false }, type: '' } as unknown as Context, req };
};

describe('streamRun', () => {
  it('a run the client cancelled (its request closed) ends quietly: onError is not called', async () => {
    const { ctx, req } = fakeCtx();
    const errors: unknown[] = [];
    let stopped!: () => void;
    const done = new Promise<void>((r) => (stopped = r));
    const out = streamRun(ctx, (_p, signal) => new Promise((_, reject) => signal.addEventListener('abort', () => (reject(signal.reason), stopped()))), (err) => errors.push(err));
    req.emit('close');
    await done;
    await new Promise((r) => out.once('finish', r).resume());
    assert.deepEqual(errors, []);
  });

  it('a run that fails on its own is reported to onError and ends with an error line', async () => {
    const { ctx } = fakeCtx();
    const errors: unknown[] = [];
    const out = streamRun(ctx, async () => Promise.reject(new Error('disk gone')), (err) => errors.push(err));
    let text = '';
    for await (const chunk of out) text += String(chunk);
    assert.equal(errors.length, 1);
    assert.match(text, /"error":\{"code":"ERR_INTERNAL"/);
  });
});
