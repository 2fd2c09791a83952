import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The server (src/attendance_live) serves the built files: index.html at `/` and
// as the fallback for client-side routes, the rest under `/assets/`.
const outDir = fileURLToPath(new URL('../src/attendance_live/web/dist', import.meta.url));

// The API docs page (/docs) works offline: Swagger UI's files from the
// swagger-ui-dist package, and our starter script, are written into the build
// under docs/ and served from the Python package.
const require = createRequire(import.meta.url);
const swaggerDir = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const docsAssets = {
  'docs/swagger-ui-bundle.js': path.join(swaggerDir, 'swagger-ui-bundle.js'),
  'docs/swagger-ui.css': path.join(swaggerDir, 'swagger-ui.css'),
  'docs/favicon-32x32.png': path.join(swaggerDir, 'favicon-32x32.png'),
  'docs/swagger-init.js': fileURLToPath(new URL('./docs/swagger-init.js', import.meta.url)),
};

function swaggerUi() {
  return {
    name: 'attendance-live-swagger-ui',
    apply: 'build',
    generateBundle() {
      for (const [fileName, source] of Object.entries(docsAssets)) {
        this.emitFile({ type: 'asset', fileName, source: readFileSync(source) });
      }
    },
  };
}

// `npm run dev` proxies the API and Socket.IO to a server on the default port.
const backend = process.env.ATTENDANCE_LIVE_URL ?? 'http://127.0.0.1:4002';

export default defineConfig({
  base: '/',
  plugins: [react(), swaggerUi()],
  build: {
    outDir,
    emptyOutDir: true,
    assetsDir: 'assets',
    sourcemap: false,
    // One small bundle: a handful of screens do not need code splitting.
    chunkSizeWarningLimit: 400,
  },
  server: {
    proxy: {
      '/api': backend,
      '/healthz': backend,
      '/socket.io': { target: backend, ws: true },
    },
  },
  test: {
    environment: 'jsdom',
    include: ['test/**/*.test.{js,jsx}'],
    restoreMocks: true,
  },
});
