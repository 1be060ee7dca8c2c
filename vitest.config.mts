import { defineConfig } from 'vitest/config';

// Unit tests of the extension's pure modules (event parsing, chart data, polling); they run in
// Node, without a browser or JupyterLab.
export default defineConfig({
  test: {
    include: ['labextension/test/**/*.test.ts'],
    environment: 'node'
  }
});
