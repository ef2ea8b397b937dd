// ESLint flat config: typescript-eslint's recommended rules over src, test, bench and scripts.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'examples/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    // The dashboard's page script runs in a browser, with uPlot loaded before it.
    files: ['src/node/dashboard/public/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', location: 'readonly', WebSocket: 'readonly', fetch: 'readonly', alert: 'readonly', Node: 'readonly', setTimeout: 'readonly', uPlot: 'readonly' },
    },
  },
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
);
