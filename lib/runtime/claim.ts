/**
 * The first step of create: the bundle's config read (validated), the id claimed (state.ts:
 * mkdir), the config copied beside the state, so later edits of the bundle's do not reach the
 * container. Done by the supervisor of `create` (or by `run` and `ns-enter -d` themselves).
 */
import { resolve } from 'node:path';
import { writeFileAtomic } from '../core/atomic-write.js';
import { ContainerPartsError } from '../core/errors.js';
import { readRuntimeConfig } from '../run/spec.js';
import type { RuntimeConfig } from '../run/runtime-spec.js';
import { asFailure } from './failure.js';
import { claimId, configCopy, removeContainerDir, type ContainerRecord } from './state.js';

/** What create claims a container from. */
export interface ClaimRequest {
  /** The bundle dir: its config.json, unless `config` is given (then relative paths of the config are relative to it). */
  bundle: string;
  /** A config made already (ns-enter -d builds one from the image): validated by its maker. */
  config?: RuntimeConfig;
  /** ns-enter -d: what `list` shows of it, and --rm. */
  image?: string;
  origin?: ContainerRecord['origin'];
  removeWhenStopped?: boolean;
}

/** Reads the bundle's config (validated), claims the id, and copies the config beside the state. */
export async function claimContainer(request: { root: string; id: string; claim?: ClaimRequest }): Promise<{ dir: string; config: RuntimeConfig }> {
  const claim = request.claim as ClaimRequest;
  const bundle = resolve(claim.bundle);
  let config: RuntimeConfig;
  try {
    config = claim.config ?? readRuntimeConfig(`${bundle}/config.json`);
  } catch (err) {
    asFailure(err);
  }
  if (!config.process?.args?.length) throw new ContainerPartsError(`${bundle}/config.json: process.args: missing (nothing to run)`);
  const dir = await claimId(request.root, {
    id: request.id,
    pid: 0,
    pidStartTime: '',
    bundle,
    rootfs: resolve(bundle, config.root?.path ?? 'rootfs'),
    created: new Date().toISOString(),
    annotations: config.annotations,
    command: config.process.args,
    image: claim.image,
    origin: claim.origin ?? 'oci-runtime',
    removeWhenStopped: claim.removeWhenStopped,
  });
  try {
    await writeFileAtomic(configCopy(dir), JSON.stringify(config));
  } catch (err) {
    removeContainerDir(request.root, request.id);
    throw err;
  }
  return { dir, config };
}
