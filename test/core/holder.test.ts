/** Telling a dead holder of a lock or staging directory from a live one we may not see. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { currentHolder, holderLiveness, isStale, parseHolder, STALE_HOLDER_MS } from '../../lib/core/holder.js';

test('this process is alive; its pid with another start time (a reused pid) is dead', () => {
  const me = currentHolder();
  assert.match(me.pidNamespace, /^pid:\[\d+\]$/);
  assert.ok(me.bootId && me.startTime);
  assert.equal(holderLiveness(me), 'alive');
  assert.equal(holderLiveness({ ...me, startTime: String(Number(me.startTime) + 1) }), 'dead');
});

test('a pid that is gone is dead; a holder in another PID namespace or boot is unknown, stale only by time', () => {
  const child = spawnSync('sh', ['-c', 'echo $$'], { encoding: 'utf8' });
  const gone = { ...currentHolder(), pid: Number(child.stdout.trim()) };
  assert.equal(holderLiveness(gone), 'dead');
  assert.equal(holderLiveness({ ...gone, pidNamespace: 'pid:[1]' }), 'unknown');
  assert.equal(holderLiveness({ ...gone, bootId: 'another boot' }), 'unknown');
  const now = Date.now();
  assert.equal(isStale(now - 1000, now), false);
  assert.equal(isStale(now - STALE_HOLDER_MS - 1, now), true);
});

test('what is not a whole record (an empty or truncated lock file) is no holder', () => {
  assert.equal(parseHolder(''), undefined);
  assert.equal(parseHolder(JSON.stringify(currentHolder()).slice(0, 20)), undefined);
  assert.equal(parseHolder('{"pid":0}'), undefined);
  assert.deepEqual(parseHolder(JSON.stringify(currentHolder())), currentHolder());
});
