import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LimitEpisodes } from '../../src/http/connection-limit.js';

describe('LimitEpisodes', () => {
  it('one start per episode however many refusals; ends below the resume mark with the count', () => {
    const e = new LimitEpisodes(8);
    assert.equal(e.openCount(10), null, 'no episode yet');
    assert.equal(e.refused(), true);
    assert.equal(e.refused(), false);
    assert.equal(e.refused(), false);
    assert.equal(e.openCount(10), null);
    assert.equal(e.openCount(9), null, 'above the mark');
    assert.equal(e.openCount(8), 3);
    assert.equal(e.openCount(2), null, 'ended once');
    assert.equal(e.refused(), true, 'a new episode');
    assert.equal(e.openCount(0), 1);
  });
});
