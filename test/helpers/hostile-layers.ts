/**
 * Random hostile layers for property tests (fast-check): files, dirs, symlinks (absolute,
 * relative, looping, dangling, climbing out to the sandbox's host content), hardlinks to
 * earlier entries (symlinks too), whiteouts and opaque markers, on few names so that
 * entries meet on the same paths (the breaches found were sequences of entries on one path).
 */
import fc from 'fast-check';
import type { UstarEntry } from './ustar.js';

// Few names, so that entries meet: the breaches are sequences of entries on the same paths
// (the reported one shows up about once in 500 flat runs of the old resolver).
const NAMES = ['p', 'q', 's', 't', 'u'];
const WHITED = ['a', 'b', 'victim', 'p'];

/** Symlink targets: absolute and relative, inside, climbing out (to the sandbox's host content), looping, dangling. */
function targets(sandbox: string): string[] {
  return ['/', '..', '../outside', '../../outside', `${sandbox}/outside`, `${sandbox}/outside/a`, 's', 'p', 'q/a', 'missing', 'p/../../outside'];
}

/** One entry to draw; `ref` picks an earlier entry (a hardlink's target, a whiteout's directory), so they meet often. */
type Draw = { kind: 'file' | 'dir' | 'symlink' | 'hardlink' | 'whiteout' | 'opaque'; name: string; target: string; whited: string; ref: number };

function drawArbitrary(sandbox: string): fc.Arbitrary<Draw> {
  return fc.record({
    kind: fc.oneof(
      { arbitrary: fc.constantFrom('file', 'dir', 'opaque'), weight: 3 },
      { arbitrary: fc.constant('symlink'), weight: 2 },
      { arbitrary: fc.constant('hardlink'), weight: 2 },
      { arbitrary: fc.constant('whiteout'), weight: 3 },
    ) as fc.Arbitrary<Draw['kind']>,
    name: fc.constantFrom(...NAMES),
    target: fc.constantFrom(...targets(sandbox)),
    whited: fc.constantFrom(...WHITED),
    ref: fc.nat(),
  });
}

/**
 * The layers' entries from the draws. A hardlink links to an earlier entry that can be
 * linked (a file, a symlink, a hardlink: all layers so far); a whiteout or opaque marker is
 * put in the root or (more often) in the draw's name as a directory.
 */
function materialize(layers: Draw[][]): UstarEntry[][] {
  const linkable: string[] = [];
  return layers.map((draws) =>
    draws.map((draw): UstarEntry => {
      const ref = linkable.length ? (linkable[draw.ref % linkable.length] as string) : undefined;
      const dir = draw.ref % 4 === 0 ? '' : `${draw.name}/`;
      switch (draw.kind) {
        case 'whiteout':
          return { name: `${dir}.wh.${draw.whited}`, type: 'file' };
        case 'opaque':
          return { name: `${dir}.wh..wh..opq`, type: 'file' };
        case 'dir':
          return { name: `${draw.name}/`, type: 'dir' };
        case 'symlink':
          linkable.push(draw.name);
          return { name: draw.name, type: 'symlink', linkname: draw.target };
        case 'hardlink':
          linkable.push(draw.name);
          if (ref !== undefined) return { name: draw.name, type: 'hardlink', linkname: ref };
      }
      linkable.push(draw.name);
      return { name: draw.name, type: 'file', content: `layer ${draw.name}\n` };
    }),
  );
}

/** 1 to 3 layers of up to 20 entries; `sandbox` is where the root's host content lives (symlinks name it). */
export function hostileLayers(sandbox: string): fc.Arbitrary<UstarEntry[][]> {
  return fc.array(fc.array(drawArbitrary(sandbox), { minLength: 1, maxLength: 20, size: 'max' }), { minLength: 1, maxLength: 3 }).map(materialize);
}
