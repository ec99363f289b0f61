/** `--change`: the Dockerfile forms `docker commit --change` takes, applied to an image config. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyChanges } from '../../lib/image/config-change.js';
import { UsageError } from '../../lib/core/errors.js';

test('CMD and ENTRYPOINT: the JSON form as it is, the shell form under /bin/sh -c', () => {
  assert.deepEqual(applyChanges({}, ['CMD ["cat","/etc/motd"]']).Cmd, ['cat', '/etc/motd']);
  assert.deepEqual(applyChanges({}, ['cmd echo "hi there"']).Cmd, ['/bin/sh', '-c', 'echo "hi there"']);
  assert.deepEqual(applyChanges({}, ['ENTRYPOINT ["/bin/sh", "-c"]']).Entrypoint, ['/bin/sh', '-c']);
  assert.deepEqual(applyChanges({}, ['ENTRYPOINT [not json']).Entrypoint, ['/bin/sh', '-c', '[not json']);
});

test('ENV and LABEL: KEY=VALUE pairs with quotes, the old KEY VALUE form; a key set again is replaced', () => {
  const config = applyChanges({ Env: ['PATH=/bin', 'A=old'] }, ['ENV A=1 B="x y" C=a\\ b', 'ENV D the rest of the line', 'LABEL "com.example.x"="1" y=2']);
  assert.deepEqual(config.Env, ['PATH=/bin', 'A=1', 'B=x y', 'C=a b', 'D=the rest of the line']);
  assert.deepEqual(config.Labels, { 'com.example.x': '1', y: '2' });
});

test('WORKDIR (relative to the last), USER, STOPSIGNAL, EXPOSE, VOLUME', () => {
  const config = applyChanges({ WorkingDir: '/srv' }, ['WORKDIR app', 'USER 1000:1000', 'STOPSIGNAL SIGINT', 'EXPOSE 80 53/udp 8000-8010', 'VOLUME ["/data"]', 'VOLUME /a /b']);
  assert.equal(config.WorkingDir, '/srv/app');
  assert.equal(config.User, '1000:1000');
  assert.equal(config.StopSignal, 'SIGINT');
  assert.deepEqual(config.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '8000-8010/tcp': {} });
  assert.deepEqual(config.Volumes, { '/data': {}, '/a': {}, '/b': {} });
});

test('the base config is not changed; unknown or malformed instructions are usage errors', () => {
  const base = { Env: ['A=1'] };
  applyChanges(base, ['ENV A=2']);
  assert.deepEqual(base.Env, ['A=1']);
  for (const bad of ['FROM busybox', 'RUN true', 'ENV', 'USER a b', 'EXPOSE http', 'LABEL =x', 'ENV A="unterminated', '']) {
    assert.throws(() => applyChanges({}, [bad]), UsageError, bad);
  }
});
