/** Layer rules: the domain core stays pure; outer layers depend inward only. */
const IO_MODULES =
  '^(node:)?(fs|fs/promises|net|http|https|http2|dgram|child_process|cluster|worker_threads|os|process|timers|timers/promises|perf_hooks|crypto|dns|tls|readline|stream)$';

module.exports = {
  forbidden: [
    {
      name: 'core-is-pure',
      comment:
        'core/ holds pure domain rules: it may import only other core/ modules (no I/O, AWS, clock or libraries).',
      severity: 'error',
      from: { path: '^core/' },
      to: { pathNot: '^core/' },
    },
    {
      name: 'contracts-only-zod-and-core',
      comment: 'contracts/ are wire schemas: zod and core types only.',
      severity: 'error',
      from: { path: '^contracts/' },
      to: { pathNot: ['^contracts/', '^core/', 'node_modules/zod/'] },
    },
    {
      name: 'app-no-technology',
      comment: 'app/ use cases talk to ports, never to AWS, adapters, handlers or node I/O directly.',
      severity: 'error',
      from: { path: '^app/' },
      to: {
        path: [
          '^adapters/',
          '^functions/',
          '^infra/',
          '^local/',
          '^site/',
          '^cli/',
          'node_modules/@aws-sdk/',
          IO_MODULES,
        ],
      },
    },
    {
      name: 'adapters-not-entry-points',
      comment:
        'adapters/ implement ports; they never reach up into handlers, infra, the simulator or the CLI.',
      severity: 'error',
      from: { path: '^adapters/' },
      to: { path: ['^functions/', '^infra/', '^local/', '^cli/'] },
    },
    {
      name: 'site-stays-on-prem',
      comment: 'site/ programs run on-prem: no AWS SDK, no cloud adapters, handlers or infra.',
      severity: 'error',
      from: { path: '^site/' },
      to: {
        path: [
          '^functions/',
          '^infra/',
          '^adapters/dynamodb/',
          '^adapters/sfn/',
          'node_modules/@aws-sdk/',
          '^local/',
        ],
      },
    },
    {
      name: 'functions-not-site',
      comment: 'Lambda bundles never include on-prem programs or the simulator.',
      severity: 'error',
      from: { path: '^functions/' },
      to: { path: ['^site/', '^local/', '^cli/', '^infra/'] },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    {
      name: 'not-to-test',
      comment: 'Production code never imports tests.',
      severity: 'error',
      from: { pathNot: '^(test|bench)/' },
      to: { path: '^(test|bench)/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: ['node_modules', 'cdk.out', 'dist'] },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
    },
  },
};
