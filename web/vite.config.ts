// The console's build: root web/, output web/dist (served by the service at /), pages split into their own chunks
// (React.lazy in src/routes.tsx) so the first download stays small. `npm run web:build`; `vite --config
// web/vite.config.ts` for hot reload against a service on 127.0.0.1:8000.
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// This folder, whatever the working directory.
const root = decodeURIComponent(new URL('.', import.meta.url).pathname);
// CONSOLE_API_URL points the dev server and preview at another service (read without node's types: this file is
// type-checked with the page's DOM types).
const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env ?? {};
const api = { target: env.CONSOLE_API_URL ?? 'http://127.0.0.1:8000', changeOrigin: false, ws: true };

export default defineConfig({
  root,
  plugins: [react()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // No inline <script> or data: URLs for scripts: the CSP is script-src 'self'.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    sourcemap: true,
    chunkSizeWarningLimit: 600,
  },
  server: { host: '127.0.0.1', port: 5173, proxy: { '/api': api } },
  preview: { host: '127.0.0.1', port: 4173, proxy: { '/api': api } },
});
