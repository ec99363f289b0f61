/**
 * The pipe document: the one JSON value the commands hand along a pipeline. Its schema is
 * schema/document.schema.json; these types mirror it. Each command owns one section.
 */

export const DOCUMENT_VERSION = 1;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  urls?: string[];
  annotations?: Record<string, string>;
  platform?: Platform;
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** image-spec config.md, the parts the toolkit reads. */
export interface ImageConfig {
  created?: string;
  architecture?: string;
  os?: string;
  variant?: string;
  config?: {
    User?: string;
    ExposedPorts?: Record<string, object>;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    Volumes?: Record<string, object>;
    WorkingDir?: string;
    Labels?: Record<string, string>;
    StopSignal?: string;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: unknown[];
}

export interface LayerDescriptor extends Descriptor {
  diffID: string;
}

export interface ImageSection {
  source?: string;
  reference: string;
  /** The image manifest's digest in the store (or the dir: layout). */
  digest: string;
  /** What the source resolved the reference to: an index, or a Docker manifest stored converted to OCI. */
  sourceDigest?: string;
  store: string;
  layout: 'oci' | 'dir';
  manifest: Descriptor;
  configDigest?: string;
  config: ImageConfig;
  layers: LayerDescriptor[];
  platform: Platform;
}

export interface SkippedEntry {
  path: string;
  reason: string;
}

export interface RootfsSection {
  mode: 'flat' | 'layers';
  /** mode flat: the root filesystem. */
  path?: string;
  /** mode layers: one directory per layer, lowest first, whiteouts in overlayfs form. */
  layers?: string[];
  /** mode layers, rootless: opaque dirs carry user.overlay.opaque (mount with userxattr). */
  userxattr?: boolean;
  config?: ImageConfig;
  /** What the tree could not hold (rootless: devices, privileged xattrs). */
  skipped?: SkippedEntry[];
  [extra: string]: unknown;
}

export interface MountSection {
  target: string;
  /** Top first, as in lowerdir=. */
  lower: string[];
  upper?: string;
  work?: string;
  driver: 'overlay' | 'fuse-overlayfs';
  options?: string;
  readOnly?: boolean;
  /** host (default): mounted at target; container: ns-enter mounts it inside the container's namespaces. */
  mountedIn?: 'host' | 'container';
  /** The dir the option string's relative names (short links) are relative to, when it has some. */
  optionsDir?: string;
  /** The per-container dir under the store that holds upper, work and merged. */
  container?: { id: string; dir: string };
  [extra: string]: unknown;
}

export interface BundleSection {
  /** The bundle directory (runc run -b PATH). */
  path: string;
  /** PATH/config.json, validated before it was written. */
  config: string;
  /** The root filesystem on the host that root.path names. */
  root: string;
  /** The config maps the caller to root in a user namespace (runc spec --rootless). */
  rootless: boolean;
  [extra: string]: unknown;
}

export interface PipeDocument {
  documentVersion: typeof DOCUMENT_VERSION;
  image?: ImageSection;
  rootfs?: RootfsSection;
  mount?: MountSection;
  bundle?: BundleSection;
  [section: string]: unknown;
}

/** A new document, or the piped one, with `section` set; every other section passes through. */
export function withSection<K extends string, V>(doc: PipeDocument | undefined, key: K, value: V): PipeDocument {
  return { ...(doc ?? { documentVersion: DOCUMENT_VERSION }), [key]: value } as PipeDocument;
}
