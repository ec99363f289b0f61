/** `img-commit --explain`: the commit as commands a reader could type (GNU tar, skopeo, umoci, buildah). */
import type { ExplainStep } from './command.js';
import { shellQuote } from '../core/shell.js';
import type { ImageSection } from './document.js';

export interface CommitExplainRequest {
  upper: string;
  base: ImageSection;
  name: string;
  compression: 'gzip' | 'zstd' | 'none';
  changes: string[];
  timestamp?: number;
}

export function explainCommit(request: CommitExplainRequest): ExplainStep[] {
  const upper = shellQuote(request.upper);
  const compress = { gzip: ' | gzip -1', zstd: ' | zstd -3', none: '' }[request.compression];
  const clamp = request.timestamp === undefined ? '' : ` --mtime=@${request.timestamp} --clamp-mtime`;
  return [
    { comment: "the upper dir's whiteouts (0/0 character devices) and opaque dirs (trusted.overlay.opaque=y) are the kernel's forms: list them", command: `find ${upper} -type c -links 1; getfattr -R -h -d -m '^trusted.overlay.opaque$' ${upper}` },
    {
      comment: 'the layer: the upper dir as a tar, sorted, numeric owners, xattrs kept (img-commit also writes each whiteout as .wh.NAME and each opaque dir\'s .wh..wh..opq, and leaves out overlay\'s own xattrs and sockets)',
      command: `tar -C ${upper} --sort=name --numeric-owner --format=pax --xattrs --xattrs-include='*'${clamp} -cf - . | tee >(sha256sum >&2)${compress} > layer   # the diff_id is the sha256 of the tar`,
    },
    { comment: 'the same commit from a container of the same image, with buildah', command: `buildah commit${request.changes.map((c) => ` --change ${shellQuote(c)}`).join('')} CONTAINER ${shellQuote(request.name)}` },
    { comment: 'or with umoci, from a bundle umoci unpacked and you changed', command: `umoci repack --image ${shellQuote(`${request.base.store}:${request.name}`)} BUNDLE` },
  ];
}
