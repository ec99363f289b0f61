/**
 * The pipe document: the one JSON value the commands hand along a pipeline. Its schema is
 * schema/document.schema.json; these types mirror it. Each command owns one section.
 */

import type { Descriptor, ImageConfig, LayerDescriptor, Platform, StoredImage } from '../image/model.js';
import type { SkippedEntry, UnpackedRootfs } from '../layer/model.js';
import type { OverlayMount } from '../mount/model.js';
import type { Bundle } from '../run/model.js';
import type { PushResult } from '../image/push.js';

export type { Descriptor, ImageConfig, LayerDescriptor, Platform, SkippedEntry };
/** Each section is the model type of the step that writes it, carried as it is. */
export type ImageSection = StoredImage;
export type RootfsSection = UnpackedRootfs;
export type MountSection = OverlayMount;
export type BundleSection = Bundle;
export type PushSection = PushResult;

export const DOCUMENT_VERSION = 1;

export interface PipeDocument {
  documentVersion: typeof DOCUMENT_VERSION;
  image?: ImageSection;
  rootfs?: RootfsSection;
  mount?: MountSection;
  bundle?: BundleSection;
  push?: PushSection;
  [section: string]: unknown;
}

/** A new document, or the piped one, with `section` set; every other section passes through. */
export function withSection<K extends string, V>(doc: PipeDocument | undefined, key: K, value: V): PipeDocument {
  return { ...(doc ?? { documentVersion: DOCUMENT_VERSION }), [key]: value } as PipeDocument;
}
