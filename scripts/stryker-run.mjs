// Runs StrykerJS through its API with the config in stryker/stryker.config.mjs. Not the
// `stryker` CLI nor the package's index: Stryker 10 refuses node < 22 when its CLI module loads
// (a version guard only; it runs on node 20, this project's engine), so the Stryker class is
// loaded from its own file.
const { Stryker } = await import(new URL('../node_modules/@stryker-mutator/core/dist/src/stryker.js', import.meta.url));
const { default: config } = await import('../stryker/stryker.config.mjs');
await new Stryker({ ...config, logLevel: process.env.CP_MUTATION_LOG_LEVEL ?? 'warn' }).runMutationTest();
