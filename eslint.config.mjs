// ESLint for the repository's JavaScript: the web pages' scripts, their build, the Node drivers the
// tests run and the solc front. `eslint .` lints them all; prettier formats them (.prettierrc).
import js from '@eslint/js';
import globals from 'globals';

export default [
  // Built, installed or generated: never linted.
  { ignores: ['web/dist/', '.venv/', '.build/', 'contracts/.cache/', 'test-artifacts/'] },
  js.configs.recommended,
  {
    // The pages' scripts: ES modules that esbuild bundles for the browser.
    files: ['web/src/**/*.js'],
    languageOptions: { sourceType: 'module', globals: globals.browser },
  },
  {
    // Node ES modules: web/build.mjs, tests/web/*.mjs, tests/core/interop/*.mjs, this file.
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
  {
    // The solc front that ape runs (scripts/toolchain/solc.js): a CommonJS Node script.
    files: ['scripts/toolchain/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: globals.node },
  },
];
