import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The server (src/attendance_live) serves the built files: index.html at `/` and
// as the fallback for client-side routes, the rest under `/assets/`.
const outDir = fileURLToPath(new URL('../src/attendance_live/web/dist', import.meta.url));

// `npm run dev` proxies the API and Socket.IO to a server on the default port.
const backend = process.env.ATTENDANCE_LIVE_URL ?? 'http://127.0.0.1:4002';

export default defineConfig({
  base: '/',
  plugins: [react()],
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
