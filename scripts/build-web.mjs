// Builds the browser files into dist/web (npm run build:web; part of npm run build): the library (kvsplit.js), its
// engine and pool workers, the chat page (index.html, chat.js, chat.css) and the kernel builds. Static files that any
// host can serve; the page needs cross-origin isolation (COOP same-origin + COEP require-corp) for its threads.
//
// The browser bundle uses the same sources as Node with two rules (esbuild plugins below):
//   - an import of ./X.js resolves to ./X.web.ts where that file exists (threads, kernel bytes: src/runtime/*.web.ts);
//   - node:* modules become stubs whose functions throw "not available in a browser" when called: Node-only paths
//     (a file path, worker_threads) are never taken in a page, and their modules still load.
import { build } from "esbuild";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));
const OUT = path.join(ROOT, "dist", "web");

/** Every name src/ imports from each node: module (named, default, namespace). */
function nodeImports() {
  const names = new Map();
  const add = (mod, name) => (names.get(mod) ?? names.set(mod, new Set()).get(mod)).add(name);
  const files = readdirSync(path.join(ROOT, "src"), { recursive: true }).filter((f) => f.endsWith(".ts"));
  for (const f of files) {
    const text = readFileSync(path.join(ROOT, "src", f), "utf8");
    for (const m of text.matchAll(/^import\s+(?!type\b)([^;]*?)\s+from\s+"(node:[\w/]+)"/gm)) {
      const [clause, mod] = [m[1], m[2]];
      const named = /\{([^}]*)\}/.exec(clause);
      if (named) for (const part of named[1].split(",")) {
        const name = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0];
        if (name && !part.trim().startsWith("type ")) add(mod, name);
      }
      if (/^\s*[A-Za-z_$][\w$]*/.test(clause.replace(/\{[^}]*\}/, "")) || clause.includes("* as")) add(mod, "default");
    }
  }
  return names;
}

const webVariants = {
  name: "web-variants",
  setup(b) {
    b.onResolve({ filter: /^\.\.?\/.*\.js$/ }, (args) => {
      const web = path.resolve(args.resolveDir, args.path.replace(/\.js$/, ".web.ts"));
      return existsSync(web) ? { path: web } : undefined;
    });
  },
};

const nodeStubs = {
  name: "node-stubs",
  setup(b) {
    const names = nodeImports();
    b.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, namespace: "node-stub" }));
    b.onLoad({ filter: /.*/, namespace: "node-stub" }, (args) => {
      const lines = [`const unavailable = (name) => function () { throw new Error(\`\${name} is not available in a browser\`); };`];
      for (const name of names.get(args.path) ?? []) {
        if (name === "default") lines.push(`export default new Proxy({}, { get: (_, key) => unavailable(\`${args.path} \${String(key)}\`) });`);
        else lines.push(`export const ${name} = unavailable("${args.path} ${name}");`);
      }
      return { contents: lines.join("\n"), loader: "js" };
    });
  },
};

rmSync(OUT, { recursive: true, force: true });
mkdirSync(OUT, { recursive: true });
await build({
  entryPoints: {
    kvsplit: "src/web/client.ts",
    "engine-worker": "src/web/engine-worker.ts",
    "pool-worker": "src/web/pool-worker.ts",
    chat: "src/web/chat-page.ts",
  },
  absWorkingDir: ROOT,
  outdir: OUT,
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "chrome114",
  sourcemap: true,
  logLevel: "warning",
  plugins: [webVariants, nodeStubs],
});
for (const f of ["kernels.wasm", "kernels-relaxed.wasm", "kernels-single.wasm"]) copyFileSync(path.join(ROOT, "build", f), path.join(OUT, f));
for (const f of ["index.html", "chat.css"]) copyFileSync(path.join(ROOT, "web", f), path.join(OUT, f));
console.log(`build:web: ${readdirSync(OUT).length} files in ${path.relative(ROOT, OUT)}`);
