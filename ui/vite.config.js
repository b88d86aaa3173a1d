// The dashboard is served by the API under /ui/; the build goes into the Python package
// (api/ui, shipped as jobyard.api package data), never into the repository.
import { defineConfig } from "vite";

export default defineConfig({
  base: "/ui/",
  build: {
    outDir: "../api/ui",
    emptyOutDir: true,
    assetsDir: "assets",
    // one module, no inline scripts: the page runs under script-src 'self'
    modulePreload: false,
    sourcemap: false,
  },
});
