/**
 * img-fetch tarball:FILE: a flat root filesystem tar (plain, gzip, zstd) becomes a one-layer
 * image, as skopeo's tarball: transport makes it (the oracle: the same diff_id), that
 * img-unpack unpacks and img-push pushes.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { constants } from 'node:os';
import { assertOneLineError, mustExec, tool } from '../../helpers/exec.js';
import { tempDir } from '../../helpers/paths.js';
import { parseDocument } from '../../../lib/cli/pipe.js';
import { privatePodman } from '../../helpers/podman.js';

let work: { path: string; cleanup: () => Promise<void> };
let store: string;

async function rootfsTar(name: string, motd: string): Promise<string> {
  const root = join(work.path, `${name}-root`);
  await mkdir(join(root, 'etc'), { recursive: true });
  await writeFile(join(root, 'etc', 'motd'), motd);
  const tar = join(work.path, `${name}.tar`);
  await mustExec('tar', ['--sort=name', '--mtime=@0', '-C', root, '-cf', tar, '.']);
  await mustExec('gzip', ['-kf', tar]);
  await mustExec('zstd', ['-qf', tar, '-o', `${tar}.zst`]);
  return tar;
}

const skopeoDiffID = async (tar: string, layout: string): Promise<string> => {
  await mustExec('skopeo', ['copy', '-q', `tarball:${tar}`, `oci:${layout}:t`]);
  return (JSON.parse(await mustExec('skopeo', ['inspect', '--config', `oci:${layout}:t`])) as { rootfs: { diff_ids: string[] } }).rootfs.diff_ids[0] as string;
};

before(async () => {
  work = await tempDir('cp-tarball-');
  store = join(work.path, 'store');
});
after(async () => {
  await work?.cleanup();
});

test('plain, gzip and zstd: one layer with the diff_id skopeo\'s tarball: gives (and another tar\'s differs); img-unpack unpacks it', async () => {
  const tar = await rootfsTar('a', 'hello\n');
  const expected = await skopeoDiffID(tar, join(work.path, 'sk-a'));
  const digests = new Set<string>();
  for (const file of [tar, `${tar}.gz`, `${tar}.zst`]) {
    const result = await tool('img-fetch', [`tarball:${file}`, '--store', store, '--name', 'localhost/imported:1']);
    assert.equal(result.status, 0, result.stderr);
    const image = parseDocument(result.stdout).image;
    assert.equal(image?.layers.length, 1);
    assert.equal(image?.layers[0]?.diffID, expected);
    digests.add(image?.layers[0]?.digest ?? '');
    const dest = join(work.path, `unpacked-${digests.size}`);
    const unpacked = await tool('img-unpack', ['--dest', dest], { input: result.stdout });
    assert.equal(unpacked.status, 0, unpacked.stderr);
    assert.equal(await readFile(join(dest, 'etc', 'motd'), 'utf8'), 'hello\n');
  }
  assert.equal(digests.size, 3, 'each file is the layer as it is');
  const other = await rootfsTar('b', 'other\n');
  assert.notEqual(await skopeoDiffID(other, join(work.path, 'sk-b')), expected);
  const again = await tool('img-fetch', [`tarball:${tar}`, '--store', store]);
  const first = await tool('img-fetch', [`tarball:${tar}`, '--store', join(work.path, 'store2')]);
  assert.equal(parseDocument(again.stdout).image?.digest, parseDocument(first.stdout).image?.digest, 'the same file is the same image');
});

test('a file that is not a tar, a missing file, a corrupt gzip: one line each, exit 1', async () => {
  await writeFile(join(work.path, 'not.tar'), 'just text\n');
  assertOneLineError(await tool('img-fetch', [`tarball:${join(work.path, 'not.tar')}`, '--store', store]), 'img-fetch', 1, /not a tar archive/);
  assertOneLineError(await tool('img-fetch', [`tarball:${join(work.path, 'missing.tar')}`, '--store', store]), 'img-fetch', 1, /no such file/);
  await writeFile(join(work.path, 'bad.tar.gz'), Buffer.from([0x1f, 0x8b, 8, 0, 1, 2, 3, 4, 5, 6, 7, 8]));
  assertOneLineError(await tool('img-fetch', [`tarball:${join(work.path, 'bad.tar.gz')}`, '--store', store]), 'img-fetch', 1, /gzip could not decompress it/);
});

const CHANGES = ['CMD ["cat","/etc/motd"]', 'ENTRYPOINT ["/bin/sh","-c"]', 'ENV GREETING=hi', 'WORKDIR /etc', 'USER 1000:1000', 'LABEL org.example.k=v', 'EXPOSE 8080/udp', 'EXPOSE 80', 'VOLUME /data', 'STOPSIGNAL SIGTERM'];
const FIELDS = ['Cmd', 'Entrypoint', 'Env', 'WorkingDir', 'User', 'Labels', 'ExposedPorts', 'Volumes', 'StopSignal'] as const;

test('--change sets the config as podman import --change does (the same fields for the same instructions; without them they differ)', async () => {
  const tar = await rootfsTar('c', 'changed\n');
  const result = await tool('img-fetch', [`tarball:${tar}`, '--store', store, '--name', 'localhost/changed:1', ...CHANGES.flatMap((c) => ['--change', c])]);
  assert.equal(result.status, 0, result.stderr);
  const ours = parseDocument(result.stdout).image?.config.config ?? {};
  const podman = await privatePodman(join(work.path, 'podman'));
  const inspect = async (changes: string[]) => {
    const id = (await podman(['import', '-q', ...changes.flatMap((c) => ['--change', c]), tar])).trim();
    return (JSON.parse(await podman(['image', 'inspect', id])) as Array<{ Config: Record<string, unknown> }>)[0]?.Config ?? {};
  };
  const theirs = await inspect(CHANGES);
  const pick = (config: Record<string, unknown>) => Object.fromEntries(FIELDS.map((f) => [f, config[f]]));
  // podman adds PATH to an import's Env; the instructions' own variables are what is compared.
  const env = (config: Record<string, unknown>) => ((config.Env as string[] | undefined) ?? []).filter((e) => !e.startsWith('PATH='));
  // podman writes STOPSIGNAL as the signal's number.
  const signal = (config: Record<string, unknown>) => String(constants.signals[config.StopSignal as NodeJS.Signals] ?? config.StopSignal);
  const comparable = (config: Record<string, unknown>) => ({ ...pick(config), Env: env(config), StopSignal: signal(config) });
  assert.deepEqual(comparable(ours as Record<string, unknown>), comparable(theirs));
  const plain = await tool('img-fetch', [`tarball:${tar}`, '--store', store, '--name', 'localhost/plain:1']);
  assert.notDeepEqual(pick((parseDocument(plain.stdout).image?.config.config ?? {}) as Record<string, unknown>), pick(theirs), 'the negative twin: no --change, another config');
});

test('--change ENV with several pairs and quotes, as docker import takes it (podman import keeps the line as one variable)', async () => {
  const tar = await rootfsTar('e', 'env\n');
  const result = await tool('img-fetch', [`tarball:${tar}`, '--store', store, '--name', 'localhost/env:1', '--change', 'ENV GREETING=hi OTHER="two words"']);
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(parseDocument(result.stdout).image?.config.config?.Env, ['GREETING=hi', 'OTHER=two words']);
});

test('--change: an unknown instruction, or a source that has its own config, is one line, exit 2, and nothing is stored', async () => {
  const tar = await rootfsTar('d', 'x\n');
  const fresh = join(work.path, 'store-refused');
  assertOneLineError(await tool('img-fetch', [`tarball:${tar}`, '--store', fresh, '--change', 'FROM scratch']), 'img-fetch', 2, /--change "FROM scratch": takes CMD/);
  assertOneLineError(await tool('img-fetch', [`tarball:${tar}`, '--store', fresh, '--change', 'EXPOSE eighty']), 'img-fetch', 2, /EXPOSE: "eighty" is not PORT/);
  assertOneLineError(await tool('img-fetch', [`oci:${join(work.path, 'sk-a')}:t`, '--store', fresh, '--change', 'CMD ["sh"]']), 'img-fetch', 2, /--change sets the config of a tarball: import/);
  const layout = await readFile(join(fresh, 'index.json'), 'utf8').catch(() => undefined);
  assert.ok(layout === undefined || JSON.parse(layout).manifests.length === 0, 'nothing was stored');
});
