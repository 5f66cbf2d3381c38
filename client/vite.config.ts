// Vite config for the browser client. Build: `npx vite build client` -> client/dist,
// which the server serves at /. Dev: `npx vite client` proxies the API and socket.io
// to a server on 127.0.0.1:3000 (override with REWARDLAB_API=http://host:port).
import { defineConfig } from "vite";

const api = process.env.REWARDLAB_API ?? "http://127.0.0.1:3000";

export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
    chunkSizeWarningLimit: 800,
  },
  server: {
    port: 5173,
    proxy: {
      // the server answers loopback Host names and same-origin sockets only (docs/security.md):
      // the proxy presents itself as the API's own origin
      "/api": { target: api, changeOrigin: true, headers: { origin: api } },
      "/socket.io": { target: api, ws: true, changeOrigin: true, headers: { origin: api } },
    },
  },
});
