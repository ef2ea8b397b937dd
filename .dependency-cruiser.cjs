/**
 * The layers of src/ and the rule that keeps them a stack (docs/architecture.md). Checked by
 * `npm run lint` (lint:deps). Type-only imports count too: a type is still a dependency.
 *
 *   cli → node → services → kernel → wasm, msg       (protocol.ts and sizes.ts: shared leaves)
 *
 * A layer imports only layers below it, and nothing imports in a cycle.
 */
const layer = (name, forbidden, why) => ({
  name,
  severity: 'error',
  comment: why,
  from: { path: `^src/${name.split('-')[0]}/` },
  to: { path: forbidden },
});

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'Import cycles tie modules together: break them with a narrow interface.', from: {}, to: { circular: true } },
    layer('msg-is-the-bottom', '^src/(wasm|kernel|services|node|cli)/|^src/protocol\\.ts$', 'The messaging layer knows no application: it is typed over a message table it is given.'),
    layer('wasm-below-kernel', '^src/(msg|kernel|services|node|cli)/|^src/protocol\\.ts$', 'Loading and instrumenting modules needs no kernel.'),
    layer('kernel-below-services', '^src/(services|node|cli)/', 'A kernel knows no service: services register with it.'),
    layer('services-below-node', '^src/(node|cli)/', 'Services run in kernels; the node composes and drives them.'),
    layer('node-below-cli', '^src/cli/', 'The node is a library; the CLI is one of its users.'),
    { name: 'src-stands-alone', severity: 'error', comment: 'Shipped code imports no tests, benchmarks or scripts.', from: { path: '^src/' }, to: { path: '^(test|bench|scripts)/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^dist/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
