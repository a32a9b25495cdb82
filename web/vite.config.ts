import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/** The dashboard build: web/ -> web/dist (served by src/dashboard/static-routes.ts). No inline scripts. */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    modulePreload: { polyfill: false },
    assetsInlineLimit: 0,
    sourcemap: false,
    target: 'es2022',
  },
  logLevel: 'warn',
});
