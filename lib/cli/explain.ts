/**
 * --explain: each command's work as the commands a reader could type instead (curl, skopeo,
 * tar, mount, unshare, runc), one per line with a comment. Pure: it looks nothing up.
 */
import type { ExplainStep } from './command.js';
import { formatReference, manifestReference, parseReference, registryEndpointHost, storeNameForLayoutImage, type ImageSource } from '../image/reference.js';
import type { RuntimeConfig } from '../run/runtime-spec.js';
import { directPlan, type PlannedSource, type PullCandidate, type RegistryPlan } from '../image/transport/registry-pull.js';
import { shellQuote } from '../core/shell.js';
import { layerCompression } from '../layer/tarstream.js';
import type { ImageSection } from './document.js';
import { runcDefaultConfig } from '../run/spec.js';

export interface ExplainFetchOptions {
  store: string;
  dir?: string;
  /** --tls-verify as given (undefined: registries.conf decides). */
  tlsVerify?: boolean;
  /** Where registries.conf and certs.d send a registry reference (planPull). */
  plan?: RegistryPlan;
  certDir?: string;
  registriesConf?: string;
}

export function explainFetch(source: ImageSource, options: ExplainFetchOptions): ExplainStep[] {
  const name = source.transport === 'docker' ? formatReference(source.reference) : source.transport === 'oci' ? storeNameForLayoutImage(source.path, source.name) : source.transport === 'tarball' ? 'NAME' : source.name ?? 'NAME';
  const destination = options.dir ? `dir:${options.dir}` : `oci:${options.store}:${name}`;
  const steps: ExplainStep[] = [];
  if (source.transport === 'docker') {
    steps.push(...registrySteps(options.plan ?? directPlan(source.reference, options.tlsVerify ?? true), options, destination));
  } else if (source.transport === 'tarball') {
    steps.push({ comment: 'a one-layer image of the root filesystem tar (skopeo\'s tarball: transport; docker import does the same)', command: `skopeo copy ${shellQuote(`tarball:${source.path}`)} ${shellQuote(destination)}` });
  } else {
    steps.push({ comment: `copy the image out of the ${source.transport === 'oci' ? 'OCI layout' : 'docker save archive'}`, command: `skopeo copy ${shellQuote(`${source.transport}:${source.path}${source.name ? `:${source.name}` : ''}`)} ${shellQuote(destination)}` });
  }
  if (!options.dir) steps.push({ comment: 'the store is an OCI image layout: its index.json names each image by its reference', command: `jq . ${shellQuote(`${options.store}/index.json`)}` });
  return steps;
}

const MANIFEST_ACCEPT_HEADER = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json';

/** curl's TLS flags for an endpoint: its certs.d CAs (--cacert trusts only them: enough for a private registry) and client certificate. */
function curlTls(source: PlannedSource): string {
  const ca = source.certs.caFiles;
  const flags = ca.length === 1 ? [`--cacert ${shellQuote(ca[0] as string)}`] : ca.length > 1 ? [`--cacert <(cat ${ca.map(shellQuote).join(' ')})`] : [];
  if (source.certs.client) flags.push(`--cert ${shellQuote(source.certs.client.certFile)} --key ${shellQuote(source.certs.client.keyFile)}`);
  return flags.map((f) => ` ${f}`).join('');
}

/** The registry part of img-fetch: the manifest from the first endpoint that answers (mirrors, then the location), blobs, and skopeo's one step. */
function registrySteps(plan: RegistryPlan, options: ExplainFetchOptions, destination: string): ExplainStep[] {
  const candidate = plan.candidates[0] as PullCandidate;
  const open = candidate.sources.filter((s) => !s.blocked);
  const blocked = candidate.sources.filter((s) => s.blocked).map((s) => s.blocked).join('; ');
  const base = (s: PlannedSource) => `${s.tlsVerify ? 'https' : 'http'}://${registryEndpointHost(s.reference.registry)}/v2/${s.reference.repository}`;
  const steps: ExplainStep[] = [];
  const first = open[0];
  if (first) {
    const roles = open.length > 1 ? `the endpoints in order (${open.map((s) => `${s.role} ${formatReference(s.reference)}`).join(', ')}; registries.conf), the first that answers serving the rest,` : 'the registry';
    const manifest = open.map((s) => `curl -fsS${curlTls(s)} -H ${shellQuote(`Accept: ${MANIFEST_ACCEPT_HEADER}`)} ${shellQuote(`${base(s)}/manifests/${manifestReference(s.reference)}`)} -o manifest.json`).join(' || ');
    steps.push(
      { comment: `${plan.shortName ? `${plan.shortName}; ` : ''}ask ${roles} for the manifest (on 401, get a token from the realm its WWW-Authenticate header names)${blocked ? `; ${blocked}` : ''}`, command: manifest },
      { comment: 'an index lists one manifest per platform: fetch the one for this host the same way, by its digest', command: `jq -r '.manifests[]? | "\\(.platform.os)/\\(.platform.architecture) \\(.digest)"' manifest.json` },
      { comment: 'download the config and each layer by digest (named by their sha256, as skopeo\'s dir: layout), and check each', command: `for d in $(jq -r '.config.digest, .layers[].digest' manifest.json); do curl -fsSL${curlTls(first)} ${shellQuote(`${base(first)}/blobs/`)}"$d" -o "\${d#sha256:}" && echo "\${d#sha256:}  \${d#sha256:}" | sha256sum -c --quiet; done` },
    );
  } else {
    steps.push({ comment: `registries.conf refuses it: ${blocked}`, command: 'false' });
  }
  const flags = `${options.registriesConf ? ` --registries-conf ${shellQuote(options.registriesConf)}` : ''}${options.certDir ? ` --src-cert-dir ${shellQuote(options.certDir)}` : ''}${options.tlsVerify === false ? ' --src-tls-verify=false' : ''}`;
  const copies = plan.candidates.map((c) => `skopeo copy${flags} docker://${formatReference(c.reference)} ${shellQuote(destination)}`);
  steps.push({ comment: `the same copy in one step with skopeo (it reads the same registries.conf and certs.d${copies.length > 1 ? '; it does not resolve short names: each candidate in order' : ''})`, command: copies.join(' || ') });
  return steps;
}

export interface ExplainMountInput {
  action: 'mount' | 'diff' | 'unmount';
  request?: { lower: string[]; upper?: string; work?: string; target?: string; readOnly: boolean; driver: string; name?: string };
  /** Not root: the kernel's overlay only mounts inside a user namespace, with userxattr. */
  rootless?: boolean;
  mount?: { target: string; lower: string[]; upper?: string };
  target?: string;
}

/** ovl-mount as the tutorial's commands (seeds 000, 001): mkdir, mount -t overlay / fuse-overlayfs, find, umount. */
export function explainMount(input: ExplainMountInput): ExplainStep[] {
  const target = input.target ?? input.mount?.target ?? 'MERGED';
  if (input.action === 'unmount') return [{ comment: 'unmount the merged tree (busy while a process has a file or its cwd in it: fuser -vm shows which)', command: `umount ${shellQuote(target)}` }];
  if (input.action === 'diff') {
    const upper = input.mount?.upper ?? 'UPPER';
    return [
      { comment: 'every change is in the upper dir: new and copied-up files, whiteouts (0/0 character devices) for deletions', command: `find ${shellQuote(upper)} -mindepth 1 -printf '%y %P\\n'` },
      { comment: 'directories whose lower contents are hidden carry the opaque xattr', command: `getfattr -R -h -d -m '^trusted\\.overlay\\.opaque$' ${shellQuote(upper)}` },
    ];
  }
  const request = input.request;
  const lower = request?.lower.length ? request.lower.join(':') : 'LAYER_TOP:...:LAYER_BOTTOM';
  const upper = request?.upper ?? 'STORE/containers/ID/upper';
  const work = request?.work ?? 'STORE/containers/ID/work';
  const merged = request?.target ?? 'STORE/containers/ID/merged';
  const options = request?.readOnly ? `ro,lowerdir=${lower}` : `lowerdir=${lower},upperdir=${upper},workdir=${work}`;
  const steps: ExplainStep[] = [
    { comment: 'the container\'s dirs: upper holds its changes, work is overlay\'s scratch space (same filesystem as upper)', command: `mkdir -p ${request?.readOnly ? '' : `${shellQuote(upper)} ${shellQuote(work)} `}${shellQuote(merged)}` },
  ];
  if (request?.driver !== 'fuse' && input.rootless) {
    steps.push({
      comment: 'without root the kernel\'s overlay mounts only in a user namespace of your own, reading user.overlay.* xattrs (userxattr); it goes when the namespace goes, so ovl-mount tries it there and leaves the mount to ns-enter or runc (mountedIn: container)',
      command: `unshare --user --map-root-user --map-users=SUBUID,1,COUNT --map-groups=SUBGID,1,COUNT --mount mount -t overlay overlay -o ${shellQuote(`userxattr,${options}`)} ${shellQuote(merged)}`,
    });
  } else if (request?.driver !== 'fuse') steps.push({ comment: 'merge the layers (lowerdir is top first); over a page of options: cd to a dir of short symlinks and name them instead', command: `mount -t overlay overlay -o ${shellQuote(options)} ${shellQuote(merged)}` });
  if (request?.driver !== 'kernel') steps.push({ comment: request?.driver === 'fuse' ? 'the same merge in user space' : 'or, without the kernel\'s overlay: the same merge in user space', command: `fuse-overlayfs -o ${shellQuote(options)} ${shellQuote(merged)}` });
  return steps;
}

/**
 * oci-spec: `runc spec`, then the edits that turn its config into ours, as one jq filter
 * (the tutorial's "edit config.json"), then how to run the bundle.
 */
export function explainSpec(config: RuntimeConfig, options: { bundle?: string; rootless: boolean }): ExplainStep[] {
  const dir = options.bundle ?? '.';
  const steps: ExplainStep[] = [
    { comment: `runc's default config${options.rootless ? ' for an unprivileged user (a user namespace maps you to root)' : ''}`, command: `${options.bundle ? `mkdir -p ${shellQuote(dir)} && ` : ''}runc spec${options.rootless ? ' --rootless' : ''}${options.bundle ? ` -b ${shellQuote(dir)}` : ''}` },
  ];
  const edits = configEdits(runcDefaultConfig({ rootless: options.rootless }), config);
  if (edits.length > 0) {
    const file = options.bundle ? `${dir}/config.json` : 'config.json';
    steps.push({
      comment: 'edit it: the command, environment, user and root from the image and the flags',
      command: `jq ${shellQuote(edits.join(' | '))} ${shellQuote(file)} > ${shellQuote(`${file}.new`)} && mv ${shellQuote(`${file}.new`)} ${shellQuote(file)}`,
    });
  }
  steps.push({ comment: 'run the bundle (the root filesystem must be where root.path says)', command: `runc run -b ${shellQuote(dir)} NAME` });
  return steps;
}

/** The jq assignments (and deletions) that turn `from` into `to`, field by field at the levels people edit. */
function configEdits(from: RuntimeConfig, to: RuntimeConfig): string[] {
  const edits: string[] = [];
  const compare = (path: string[], a: unknown, b: unknown, depth: number): void => {
    if (JSON.stringify(a) === JSON.stringify(b)) return;
    const isObject = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (depth > 0 && isObject(a) && isObject(b)) {
      const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
      for (const key of keys) compare([...path, key], (a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key], depth - 1);
      return;
    }
    const jqPath = path.map((p) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(p) ? `.${p}` : `[${JSON.stringify(p)}]`)).join('');
    // Entries appended to runc's list (mounts, namespaces) read better as `+=`.
    const appended = Array.isArray(a) && Array.isArray(b) && b.length > a.length && JSON.stringify(b.slice(0, a.length)) === JSON.stringify(a);
    if (appended) edits.push(`${jqPath} += ${JSON.stringify((b as unknown[]).slice((a as unknown[]).length))}`);
    else edits.push(b === undefined ? `del(${jqPath})` : `${jqPath} = ${JSON.stringify(b)}`);
  };
  compare([], from, to, 2);
  return edits;
}

/** img-unpack: each layer through tar in order, whiteouts by hand; or umoci in one step. */
export function explainUnpack(image: ImageSection, options: { dest?: string; layers: boolean }): ExplainStep[] {
  const blob = (digest: string) => shellQuote(image.layout === 'dir' ? `${image.store}/${digest.slice(7)}` : `${image.store}/blobs/sha256/${digest.slice(7)}`);
  const decompress = (mediaType: string, digest: string) => ({ none: `cat ${blob(digest)}`, gzip: `gzip -dc ${blob(digest)}`, zstd: `zstd -dc ${blob(digest)}` })[layerCompression(mediaType)];
  const tarFlags = '--numeric-owner --same-permissions --xattrs --xattrs-include=\'*\'';
  const steps: ExplainStep[] = [];
  const flatDest = shellQuote(options.dest ?? 'ROOTFS');
  if (!options.layers) steps.push({ comment: 'the root filesystem starts empty', command: `mkdir -p ${flatDest}` });
  for (const [i, layer] of image.layers.entries()) {
    const diffID = image.config.rootfs.diff_ids[i] ?? layer.diffID;
    const dest = options.layers ? shellQuote(`${options.dest ?? 'LAYERS'}/${diffID.slice(7)}`) : flatDest;
    steps.push({ comment: `layer ${i + 1}: its uncompressed bytes must hash to the config's diff_id`, command: `${decompress(layer.mediaType, layer.digest)} | sha256sum   # expect ${diffID.slice(7)}` });
    if (options.layers) steps.push({ comment: `layer ${i + 1} in a directory of its own`, command: `mkdir -p ${dest}` });
    if (!options.layers) {
      steps.push({
        comment: `layer ${i + 1}: first its whiteouts delete what lower layers made (.wh.NAME removes NAME, .wh..wh..opq empties the directory); GNU tar does not know them`,
        command: `${decompress(layer.mediaType, layer.digest)} | tar -t | grep '\\.wh\\.' | while read -r w; do d=$(dirname "$w"); n=$(basename "$w"); if [ "$n" = .wh..wh..opq ]; then find ${flatDest}/"$d" -mindepth 1 -delete; else rm -rf ${flatDest}/"$d/\${n#.wh.}"; fi; done`,
      });
    }
    steps.push({ comment: `layer ${i + 1}: extract it (img-unpack also resolves every path as if chrooted, so no symlink leads out of the root)`, command: `${decompress(layer.mediaType, layer.digest)} | tar -x -C ${dest} ${tarFlags}${options.layers ? '' : " --exclude='.wh.*'"}` });
    if (options.layers) {
      steps.push({
        comment: 'whiteouts in overlayfs form: .wh.NAME becomes a 0/0 character device, .wh..wh..opq the opaque xattr on its directory',
        command: `cd ${dest} && find . -name '.wh.*' | while read -r w; do d=$(dirname "$w"); n=$(basename "$w"); rm "$w"; if [ "$n" = .wh..wh..opq ]; then setfattr -n trusted.overlay.opaque -v y "$d"; else mknod "$d/\${n#.wh.}" c 0 0; fi; done`,
      });
    }
  }
  if (!options.layers) steps.push({ comment: 'the same in one step with umoci (the rootfs is BUNDLE/rootfs)', command: `umoci unpack --image ${shellQuote(`${image.store}:${image.reference}`)} BUNDLE` });
  else steps.push({ comment: 'stack them, top first, as a read-only overlay', command: `mount -t overlay overlay -o lowerdir=${image.layers.map((l, i) => `${options.dest ?? 'LAYERS'}/${(image.config.rootfs.diff_ids[i] ?? l.diffID).slice(7)}`).reverse().join(':')} MERGED` });
  return steps;
}

/**
 * ns-enter as the tutorial's commands (seeds 000-002): unshare for the namespaces, mount for
 * /proc, /dev, /sys and the volumes, pivot_root to switch the root and detach the old one,
 * the cgroup files for the limits, setpriv for user and capabilities; then the one bwrap
 * command line ns-enter really runs, which does all of it.
 */
export function explainRun(config: RuntimeConfig, argv: string[], options: { id: string; init: boolean }): ExplainStep[] {
  const root = config.root?.path ?? 'ROOTFS';
  const ns = new Set((config.linux?.namespaces ?? []).map((n) => n.type));
  const unshareFlags: Array<[string, string]> = [['mount', '--mount'], ['uts', '--uts'], ['ipc', '--ipc'], ['pid', '--pid --fork'], ['network', '--net'], ['cgroup', '--cgroup']];
  const flags = unshareFlags.filter(([type]) => ns.has(type as never)).map(([, flag]) => flag).join(' ');
  const proc = config.process;
  const r = (path: string) => shellQuote(`${root}${path}`);
  const steps: ExplainStep[] = [];
  const resources = config.linux?.resources ?? {};
  // Under the caller's own cgroup in each hierarchy (OWN: its line in /proc/self/cgroup), as runc places it.
  const at = (controller: string) => `/sys/fs/cgroup/${controller}/OWN/${config.linux?.cgroupsPath ?? `container-parts-${options.id}`}`;
  if (resources.memory?.limit !== undefined || resources.pids || resources.cpu || resources.devices?.length) {
    steps.push({ comment: "a cgroup under the caller's own, in every hierarchy (v1: one dir per controller; v2: one dir with memory.max, pids.max, cpu.max)", command: `for c in /sys/fs/cgroup/*/; do mkdir -p ${at('$(basename $c)')}; done` });
    if (resources.memory?.limit !== undefined) steps.push({ comment: 'the memory limit: the kernel OOM-kills past it (exit 137)', command: `echo ${resources.memory.limit} > ${at('memory')}/memory.limit_in_bytes` });
    if (resources.pids) steps.push({ comment: 'the process limit: fork fails past it', command: `echo ${resources.pids.limit < 0 ? 'max' : resources.pids.limit} > ${at('pids')}/pids.max` });
    if (resources.devices?.length) steps.push({ comment: "the device rules in order (runc's default denies all), then runc's allowed devices (null, zero, full, random, urandom, tty, pts, ptmx, tun)", command: `echo a > ${at('devices')}/devices.deny && echo 'c 1:3 rwm' > ${at('devices')}/devices.allow # ...` });
    steps.push({ comment: 'join it (the shell that runs everything below), before the cgroup namespace is made', command: `for c in /sys/fs/cgroup/*/; do echo $$ > ${at('$(basename $c)')}/cgroup.procs; done` });
  }
  const maps = (mappings: Array<{ containerID: number; hostID: number; size: number }> | undefined, kind: 'users' | 'groups') =>
    (mappings ?? []).map((m) => (m.containerID === 0 && m.size === 1 ? `--map-${kind === 'users' ? 'user' : 'group'}=0` : `--map-${kind}=${m.hostID},${m.containerID},${m.size}`)).join(' ');
  const user = ns.has('user') ? `--user ${maps(config.linux?.uidMappings, 'users')} ${maps(config.linux?.gidMappings, 'groups')} ` : '';
  const comment = user ? 'rootless: a user namespace maps you to root and your /etc/subuid range (newuidmap) to the image\'s other ids; in it, new namespaces; the shell that follows runs inside them as PID 1' : 'new namespaces; the shell that follows runs inside them as PID 1 of the new pid namespace';
  steps.push({ comment, command: `unshare ${user}${flags} --propagation private sh` });
  if (config.hostname) steps.push({ comment: 'the container\'s host name (uts namespace)', command: `hostname ${shellQuote(config.hostname)}` });
  steps.push({ comment: 'the root must be a mount point for pivot_root', command: `mount --bind ${shellQuote(root)} ${shellQuote(root)}` });
  for (const mount of config.mounts ?? []) {
    const options = (mount.options ?? []).filter((o) => !['bind', 'rbind'].includes(o));
    const isBind = mount.type === 'bind' || (mount.options ?? []).some((o) => o === 'bind' || o === 'rbind');
    const target = r(mount.destination);
    if (isBind) steps.push({ comment: `bind ${mount.source} into the container${options.includes('ro') ? ', read-only' : ''}`, command: `mkdir -p ${target} && mount --rbind ${shellQuote(mount.source ?? '')} ${target}${options.includes('ro') ? ` && mount -o remount,bind,ro ${target}` : ''}` });
    else if (mount.type === 'sysfs') steps.push({ comment: '/sys, read-only (bubblewrap binds the host\'s: a new sysfs needs its own network namespace owner)', command: `mount --rbind /sys ${target} && mount -o remount,bind,ro ${target}` });
    else if (mount.type === 'cgroup') continue;
    else steps.push({ comment: `${mount.type} at ${mount.destination}${mount.type === 'proc' ? ': the processes of this pid namespace only' : ''}`, command: `mkdir -p ${target} && mount -t ${mount.type} ${options.length ? `-o ${shellQuote(options.join(','))} ` : ''}${mount.source ?? mount.type} ${target}` });
    if (mount.destination === '/dev' && mount.type === 'tmpfs') steps.push({ comment: 'the safe devices, bound from the host', command: `for d in null zero full random urandom tty; do touch ${r('/dev/')}$d; mount --bind /dev/$d ${r('/dev/')}$d; done; ln -s pts/ptmx ${r('/dev/ptmx')}` });
  }
  for (const path of config.linux?.maskedPaths ?? []) steps.push({ comment: `mask ${path} (runc's masked paths)`, command: `mount --bind /dev/null ${r(path)} 2>/dev/null || mount -t tmpfs -o ro tmpfs ${r(path)}` });
  for (const path of config.linux?.readonlyPaths ?? []) steps.push({ comment: `${path} read-only`, command: `mount --bind ${r(path)} ${r(path)} && mount -o remount,bind,ro ${r(path)}` });
  steps.push(
    { comment: 'switch the root and detach the old one: the host\'s files are out of reach', command: `cd ${shellQuote(root)} && mkdir -p .oldroot && pivot_root . .oldroot && cd / && umount -l /.oldroot && rmdir /.oldroot` },
  );
  if (config.root?.readonly) steps.push({ comment: 'a read-only root', command: 'mount -o remount,bind,ro /' });
  if (proc) {
    const caps = (proc.capabilities?.bounding ?? []).map((c) => `+${c.replace(/^CAP_/, '').toLowerCase()}`).join(',');
    const env = (proc.env ?? []).map(shellQuote).join(' ');
    steps.push({ comment: 'become the user, cut the capabilities to the config\'s sets, set no_new_privs, and run the command with its environment', command: `cd ${shellQuote(proc.cwd)} && exec setpriv --reuid ${proc.user.uid} --regid ${proc.user.gid} ${proc.user.additionalGids?.length ? `--groups ${proc.user.additionalGids.join(',')}` : '--clear-groups'} --bounding-set -all${caps ? `,${caps}` : ''} --nnp env -i ${env} ${options.init ? 'catatonit -- ' : ''}${(proc.args ?? []).map(shellQuote).join(' ')}` });
  }
  steps.push({ comment: 'what ns-enter runs: bubblewrap does all of the above in one process, and its static helper (ns-enter-exec, run from an fd: nothing of the host is bound in) sets the user, capabilities and limits', command: argv.map(shellQuote).join(' ') });
  return steps;
}

/** img-push: the blobs one by one as distribution-spec says, and the same copy in one skopeo step. */
export function explainPush(source: { store: string; name: string; digest: string }, destination: string, options: { tlsVerify?: boolean; certDir?: string }): ExplainStep[] {
  const steps: ExplainStep[] = [];
  if (destination.startsWith('docker://')) {
    const reference = parseReference(destination.slice('docker://'.length));
    const url = `${options.tlsVerify === false ? 'http' : 'https'}://${registryEndpointHost(reference.registry)}/v2/${reference.repository}/manifests/${manifestReference(reference)}`;
    steps.push(
      { comment: 'for each blob (config, layers): HEAD /v2/REPO/blobs/DIGEST says whether it is there; POST /v2/REPO/blobs/uploads/?mount=DIGEST&from=OTHER mounts it from another repository of the registry; else POST, then PUT LOCATION?digest=DIGEST with the bytes (PATCH chunks for a large one)', command: `jq -r '.config.digest, .layers[].digest' ${shellQuote(`${source.store}/blobs/sha256/${source.digest.slice(7)}`)}` },
      { comment: 'last, the manifest, so that the tag names only an image whose blobs are all there', command: `curl -fsS -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @${shellQuote(`${source.store}/blobs/sha256/${source.digest.slice(7)}`)} ${shellQuote(url)}` },
    );
  }
  const flags = `${options.certDir ? ` --dest-cert-dir ${shellQuote(options.certDir)}` : ''}${options.tlsVerify === false ? ' --dest-tls-verify=false' : ''}`;
  steps.push({ comment: 'the same copy in one step with skopeo', command: `skopeo copy${flags} ${shellQuote(`oci:${source.store}:${source.name}`)} ${shellQuote(destination)}` });
  return steps;
}
