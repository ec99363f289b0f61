/**
 * `make bench`: every benchmark, each command beside the tool people use instead.
 * `node dist/bench/run.js NAME…` runs only the named ones.
 */
interface Benchmark {
  name: string;
  run(): Promise<void>;
}

const benchmarks: Benchmark[] = [
  // Each benchmark module adds itself here, one line each.
  { name: 'oci-spec', run: () => import('./oci-spec.js').then((m) => m.run()) },
  { name: 'fetch', run: () => import('./fetch.js').then((m) => m.run()) },
  { name: 'ns-enter', run: () => import('./ns-enter.js').then((m) => m.run()) },
  { name: 'unpack', run: () => import('./unpack.js').then((m) => m.run()) },
  { name: 'push', run: () => import('./push.js').then((m) => m.run()) },
  { name: 'layer-shapes', run: () => import('./layer-shapes.js').then((m) => m.run()) },
  { name: 'commit', run: () => import('./commit.js').then((m) => m.run()) },
  { name: 'oci-runtime', run: () => import('./oci-runtime.js').then((m) => m.run()) },
];

const wanted = process.argv.slice(2);
for (const benchmark of benchmarks) {
  if (wanted.length && !wanted.includes(benchmark.name)) continue;
  await benchmark.run();
}
