/** `img-store --explain`: each subcommand as the commands of the tools people use (skopeo, umoci, podman). */
import type { ExplainStep } from './command.js';
import { shellQuote } from '../core/shell.js';

export function explainStore(store: string, subcommand: string, names: string[]): ExplainStep[] {
  const layout = shellQuote(store);
  const ref = (name: string) => shellQuote(`${store}:${name}`);
  switch (subcommand) {
    case 'ls':
      return [{ comment: 'the names index.json gives (org.opencontainers.image.ref.name), and each image', command: `umoci ls --layout ${layout}; skopeo inspect oci:${ref('NAME')}` }];
    case 'tag':
      return [{ comment: 'a second name for the same manifest (no blob is copied)', command: `skopeo copy oci:${ref(names[0] ?? 'SRC')} oci:${ref(names[1] ?? 'NEW')}` }];
    case 'rm':
      return [{ comment: 'the names go from index.json; the blobs stay until gc', command: `umoci rm --image ${names.map(ref).join(' ') || ref('NAME')}` }];
    default:
      return [
        { comment: 'blobs no name reaches, as umoci gc does', command: `umoci gc --layout ${layout}` },
        { comment: 'and the cached trees (layers/, rootfs/) of images no name keeps, dead pulls\' staging dirs, dead containers\' dirs: as podman image prune does for its storage', command: 'podman image prune' },
      ];
  }
}
