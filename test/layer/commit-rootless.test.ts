/**
 * Rootless img-commit (issue 15): the owners in the layer are the ids the container saw. The
 * upper dir of a rootless overlay holds host ids (the user's own for the container's root, the
 * /etc/subuid range for its other users); the layer must hold 0 and 1000, not 100999. Users are
 * made with useradd (one with the range useradd gives, one without) and removed at the end; run
 * this file under `flock /tmp/cp-users.lock`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { mustExec } from '../helpers/exec.js';
import { createTestUser, type TestUser } from '../helpers/users.js';
import { toolPath } from '../helpers/paths.js';
import { registryWithBusybox, type TestRegistry } from '../helpers/registry.js';
import { subordinateRanges } from '../../lib/core/userns.js';
import { shellQuote } from '../../lib/core/shell.js';
import { containerOwners, decodeRootlessOwner } from '../../lib/layer/container-owners.js';
import { rootlessOwner } from '../../lib/layer/metadata.js';

const cmd = (name: string) => `${shellQuote(process.execPath)} ${shellQuote(toolPath(name))}`;

interface LayerEntry {
  name: string;
  uid: number;
  gid: number;
  pax: Record<string, string>;
}

/** The layer's entries as Python's tarfile reads them (an independent tar reader). */
async function layerEntries(blob: string): Promise<Map<string, LayerEntry>> {
  const script = 'import json,sys,tarfile\nprint(json.dumps([{"name":m.name,"uid":m.uid,"gid":m.gid,"pax":m.pax_headers} for m in tarfile.open(sys.argv[1])]))';
  const entries = JSON.parse(await mustExec('python3', ['-c', script, blob])) as LayerEntry[];
  return new Map(entries.map((e) => [e.name.replace(/\/$/, ''), e]));
}

test('owners map back through the mappings; an id outside them is the overflow id; without a range the recorded owner is kept', () => {
  const map = { uidMappings: [{ containerID: 0, hostID: 1001, size: 1 }, { containerID: 1, hostID: 100000, size: 65536 }], gidMappings: [{ containerID: 0, hostID: 1002, size: 1 }, { containerID: 1, hostID: 200000, size: 65536 }], ranged: true };
  const owners = containerOwners(map);
  assert.deepEqual(owners({ uid: 1001, gid: 1002 }, undefined), { uid: 0, gid: 0 });
  assert.deepEqual(owners({ uid: 100999, gid: 200999 }, undefined), { uid: 1000, gid: 1000 });
  assert.deepEqual(owners({ uid: 0, gid: 5 }, undefined), { uid: 65534, gid: 65534 }, 'host root is not mapped: the container saw nobody');
  const recorded = new Map([['user.rootlesscontainers', rootlessOwner(1000, 100) as Buffer]]);
  assert.deepEqual(owners({ uid: 100999, gid: 200999 }, recorded), { uid: 1000, gid: 1000 }, 'with a range the ids on disk are what the container saw');
  const single = containerOwners({ ...map, uidMappings: [map.uidMappings[0]!], gidMappings: [map.gidMappings[0]!], ranged: false });
  assert.deepEqual(single({ uid: 1001, gid: 1002 }, recorded), { uid: 1000, gid: 100 });
  assert.deepEqual(single({ uid: 1001, gid: 1002 }, undefined), { uid: 0, gid: 0 });
  for (const [uid, gid] of [[0, 0], [1000, 0], [0, 7], [70000, 4294967294]]) assert.deepEqual(decodeRootlessOwner(rootlessOwner(uid as number, gid as number) ?? Buffer.alloc(0)), { uid, gid });
});

describe('rootless img-commit as users made with useradd', () => {
  let registry: TestRegistry;
  const users: TestUser[] = [];
  let image: string;

  before(async () => {
    ({ registry, image } = await registryWithBusybox());
  });
  after(async () => {
    await registry?.stop();
    for (const user of users) await user.remove();
  });

  /** As the user: a container of the lab busybox, changes by its root and by its user 1000, then the commit. */
  async function commitAs(user: TestUser, changes: string): Promise<{ layer: Map<string, LayerEntry>; upper: string }> {
    const script = [
      `${cmd('img-fetch')} ${image} --tls-verify=false -q | ${cmd('img-unpack')} --layers -q | ${cmd('ovl-mount')} -q > c.json`,
      `${cmd('ns-enter')} --input c.json -- sh -c ${shellQuote(changes)}`,
      `${cmd('img-commit')} --input c.json --name localhost/rootless-commit:1 -q > commit.json`,
    ].join(' && ');
    const result = await user.run('sh', ['-c', `cd "$HOME" && ${script}`], { timeoutMs: 180_000 });
    assert.equal(result.status, 0, result.stderr);
    const doc = JSON.parse(readFileSync(join(user.home, 'commit.json'), 'utf8')) as { image: { store: string; layers: Array<{ digest: string }> } };
    const top = doc.image.layers[doc.image.layers.length - 1]?.digest as string;
    const upper = (JSON.parse(readFileSync(join(user.home, 'c.json'), 'utf8')) as { mount: { upper: string } }).mount.upper;
    return { layer: await layerEntries(join(doc.image.store, 'blobs', 'sha256', top.slice(7))), upper };
  }

  test('with a subordinate range: the layer has 0:0 and 1000:1000, not the range\'s host ids (which the upper dir has), and no owner records', async () => {
    const user = await createTestUser('cpcommitrl');
    users.push(user);
    const subuid = subordinateRanges(readFileSync('/etc/subuid', 'utf8'), { name: user.name, id: user.uid })[0];
    assert.ok(subuid, 'useradd gave the user a subordinate range');
    const { layer, upper } = await commitAs(user, 'echo hi > /etc/motd; echo lab > /home/lab/made; chown 1000:1000 /home/lab/made; mkdir /opt; chown 1000:1000 /opt; touch /opt/rootfile');
    const owner = (name: string) => [layer.get(name)?.uid, layer.get(name)?.gid];
    assert.deepEqual(owner('etc/motd'), [0, 0]);
    assert.deepEqual(owner('opt/rootfile'), [0, 0]);
    assert.deepEqual(owner('home/lab/made'), [1000, 1000]);
    assert.deepEqual(owner('home/lab'), [1000, 1000], "the image's /home/lab, copied up");
    assert.deepEqual(owner('opt'), [1000, 1000]);
    // The negative twin: on the host the same files have the user's and the range's ids.
    assert.equal(lstatSync(join(upper, 'home', 'lab', 'made')).uid, subuid.start + 999);
    assert.equal(lstatSync(join(upper, 'etc', 'motd')).uid, user.uid);
    for (const entry of layer.values()) assert.ok(!Object.keys(entry.pax).some((k) => k.includes('rootlesscontainers')), `${entry.name} carries an owner record`);
  });

  test('without a range only root was mapped: the image\'s recorded owners are kept, the container\'s root is 0', async () => {
    const user = await createTestUser('cpcommitnr', ['-K', 'SUB_UID_COUNT=0', '-K', 'SUB_GID_COUNT=0']);
    users.push(user);
    const { layer } = await commitAs(user, 'echo hi > /etc/motd; echo lab > /home/lab/made');
    assert.deepEqual([layer.get('etc/motd')?.uid, layer.get('etc/motd')?.gid], [0, 0]);
    assert.deepEqual([layer.get('home/lab')?.uid, layer.get('home/lab')?.gid], [1000, 1000], "the image's owner of the copied-up /home/lab");
    assert.deepEqual([layer.get('home/lab/made')?.uid, layer.get('home/lab/made')?.gid], [0, 0], 'made by the container\'s root');
  });
});
