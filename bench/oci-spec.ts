/**
 * oci-spec vs `runc spec`: writing a bundle's config.json, A B A B in one run. Three forms:
 * runc's defaults (the same bytes as runc spec), and a config built from a piped document
 * (image config + run flags, /etc/passwd read from the rootfs) with its validation. runc is a
 * Go binary that starts in a few ms; oci-spec is a node process, so the ratio is mostly start-up.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { compare } from './harness.js';
import { tempDir, toolPath } from '../test/helpers/paths.js';
import { shellQuote } from '../lib/core/shell.js';

export async function run(): Promise<void> {
  const work = await tempDir('cp-bench-spec-');
  try {
    const rootfs = join(work.path, 'rootfs');
    await mkdir(join(rootfs, 'etc'), { recursive: true });
    await writeFile(join(rootfs, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\nlab:x:1000:1000::/home/lab:/bin/sh\n');
    await writeFile(join(rootfs, 'etc', 'group'), 'root:x:0:\nwheel:x:10:lab\nlab:x:1000:\n');
    const document = join(work.path, 'document.json');
    await writeFile(document, JSON.stringify({
      documentVersion: 1,
      rootfs: { mode: 'flat', path: rootfs, config: { architecture: 'amd64', os: 'linux', config: { Cmd: ['sh'], Env: ['PATH=/bin'], User: 'lab', ExposedPorts: { '8080/tcp': {} } }, rootfs: { type: 'layers', diff_ids: [] } } },
    }));
    const bundle = (name: string) => join(work.path, name);
    const fresh = (name: string) => async () => {
      await rm(bundle(name), { recursive: true, force: true });
      await mkdir(bundle(name));
    };
    const ociSpec = `node ${shellQuote(toolPath('oci-spec'))}`;
    await compare(
      "write runc's default config.json into a bundle",
      { name: 'runc spec', command: `runc spec -b ${shellQuote(bundle('runc'))}`, prepare: fresh('runc') },
      [
        { name: 'oci-spec --bundle', command: `${ociSpec} --bundle ${shellQuote(bundle('ours'))} > /dev/null`, prepare: fresh('ours') },
        { name: 'oci-spec --bundle (image+flags)', command: `${ociSpec} --bundle ${shellQuote(bundle('built'))} --input ${shellQuote(document)} -e A=1 --tmpfs /scratch -- id > /dev/null`, prepare: fresh('built') },
      ],
      { rounds: 10 },
    );
  } finally {
    await work.cleanup();
  }
}
