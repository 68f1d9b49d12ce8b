// npm run dev: the service in watch mode (tsx watch, restarts on a change under src/) and the console on Vite's dev
// server with hot reload, which proxies the API, its websockets and the docs to the service. Open the URL Vite
// prints (http://localhost:5173). Ctrl-C stops both; either one stopping stops the other.
/* global process, console */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const PORT = process.env.PORT || '8000';
// The service's own address as the proxy reaches it (HOST 0.0.0.0 listens on loopback too).
const target = `http://127.0.0.1:${PORT}`;

const tsx = path.join(path.dirname(require.resolve('tsx/package.json')), 'dist', 'cli.mjs');
const service = spawn(process.execPath, [tsx, 'watch', '--clear-screen=false', 'src/main.ts'], { stdio: 'inherit' });

let viteServer;
let stopping = false;
async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  if (service.exitCode === null) service.kill('SIGTERM');
  await viteServer?.close().catch(() => {});
  process.exitCode = code;
}
service.on('exit', (code) => void stop(code ?? 0));
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

if (!existsSync('web/index.html')) {
  console.log('dev: no console in web/ yet; the service alone, docs at /docs');
} else {
  const { createServer } = await import('vite');
  // Merged into web/vite.config.*. The proxy keeps the browser's Host (no changeOrigin): the page and the API then
  // share one origin, as when the service serves the console, which the refresh cookie's CSRF check expects.
  const proxy = { target, changeOrigin: false };
  viteServer = await createServer({
    root: 'web',
    server: {
      proxy: {
        '/api': { ...proxy, ws: true },
        '/docs': proxy,
        '/openapi.json': proxy,
        '/health': proxy,
      },
    },
  });
  await viteServer.listen();
  viteServer.printUrls();
}
