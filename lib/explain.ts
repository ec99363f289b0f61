/**
 * --explain: each command's work as the commands a reader could type instead (curl, skopeo,
 * tar, mount, unshare, runc), one per line with a comment. Pure: it looks nothing up.
 */
import type { ExplainStep } from './cli.js';
import { formatReference, manifestReference, registryEndpointHost, type ImageSource } from './reference.js';
import { shellQuote } from './shell.js';

export function explainFetch(source: ImageSource, options: { store: string; dir?: string; tlsVerify: boolean }): ExplainStep[] {
  const destination = options.dir ? `dir:${options.dir}` : `oci:${options.store}:NAME`;
  const steps: ExplainStep[] = [];
  if (source.transport === 'docker') {
    const ref = source.reference;
    const base = `${options.tlsVerify ? 'https' : 'http'}://${registryEndpointHost(ref.registry)}/v2/${ref.repository}`;
    const accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json';
    steps.push(
      { comment: 'ask the registry for the manifest (on 401, get a token from the realm its WWW-Authenticate header names)', command: `curl -fsS -H ${shellQuote(`Accept: ${accept}`)} ${shellQuote(`${base}/manifests/${manifestReference(ref)}`)} -o manifest.json` },
      { comment: 'an index lists one manifest per platform: fetch the one for this host the same way, by its digest', command: `jq -r '.manifests[]? | "\\(.platform.os)/\\(.platform.architecture) \\(.digest)"' manifest.json` },
      { comment: 'download the config and each layer by digest, and check each against its sha256', command: `curl -fsSL ${shellQuote(`${base}/blobs/DIGEST`)} -o blob && echo "\${DIGEST#sha256:}  blob" | sha256sum -c` },
      { comment: 'the same copy in one step with skopeo', command: `skopeo copy${options.tlsVerify ? '' : ' --src-tls-verify=false'} docker://${formatReference(ref)} ${shellQuote(destination)}` },
    );
  } else {
    steps.push({ comment: `copy the image out of the ${source.transport === 'oci' ? 'OCI layout' : 'docker save archive'}`, command: `skopeo copy ${shellQuote(`${source.transport}:${source.path}${source.name ? `:${source.name}` : ''}`)} ${shellQuote(destination)}` });
  }
  if (!options.dir) steps.push({ comment: 'the store is an OCI image layout: its index.json names each image by its reference', command: `jq . ${shellQuote(`${options.store}/index.json`)}` });
  return steps;
}
