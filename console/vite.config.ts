import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// The console is served by the webhooks binary itself (console/dist is embedded at compile time)
// under a strict Content-Security-Policy: no inline scripts, nothing from other origins. Vite's
// production output is exactly that: one module script and one stylesheet under /assets/.
//
// `npm run dev` serves the sources with hot reload and forwards the gRPC-Web calls to a running
// service's console listener (WEBHOOKS_CONSOLE_URL, default http://127.0.0.1:8080).
const backend = process.env.WEBHOOKS_CONSOLE_URL ?? "http://127.0.0.1:8080";

export default defineConfig({
  resolve: {
    // The generated messages are clients/typescript's (tsconfig.json's `paths` says the same
    // for tsc). Their imports of @bufbuild/protobuf resolve to this folder's copy, so the bundle
    // holds one runtime, not a second one from clients/typescript/node_modules.
    alias: [
      {
        find: /^@backoffice\/webhooks-client\/gen\//,
        replacement: fileURLToPath(new URL("../clients/typescript/src/gen/", import.meta.url)),
      },
    ],
    dedupe: ["@bufbuild/protobuf"],
  },
  // JSX is compiled by esbuild (the automatic React runtime); no Babel plugin is needed.
  esbuild: { jsx: "automatic" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
  server: {
    // The "Learn More" page imports ../docs/receiving-webhooks.md.
    fs: { allow: [".."] },
    proxy: {
      "/backoffice.webhooks.v1.": { target: backend, changeOrigin: true },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
