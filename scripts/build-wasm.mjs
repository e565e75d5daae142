// Builds the kernel variants named on the command line from assembly/ with AssemblyScript (npm run
// build:wasm:<variant>; all three: npm run build:wasm):
//   plain    build/kernels.wasm          SIMD, threads (shared memory): every Node and browser
//   relaxed  build/kernels-relaxed.wasm  + relaxed SIMD: chosen at load time where the runtime has it
//   single   build/kernels-single.wasm   SIMD, one thread (an unshared memory): pages without cross-origin isolation
// A build takes minutes, so it is skipped when its output exists and nothing it depends on changed since: the stamp
// beside the output (build/<name>.stamp) holds a SHA-256 of the variant's asc arguments, the AssemblyScript version and
// every file under assembly/. `--force` builds anyway.
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../", import.meta.url));

const COMMON = ["--runtime", "stub", "--enable", "simd", "--enable", "threads", "--importMemory", "--initialMemory", "1", "--maximumMemory", "65536", "-O3", "--noAssert"];
/** Each variant's output and the asc flags beyond COMMON. */
const VARIANTS = {
  plain: { out: "build/kernels.wasm", flags: ["--sharedMemory"] },
  relaxed: { out: "build/kernels-relaxed.wasm", flags: ["--sharedMemory", "--enable", "relaxed-simd"] },
  single: { out: "build/kernels-single.wasm", flags: [] },
};

const args = process.argv.slice(2);
const force = args.includes("--force");
const names = args.filter((a) => a !== "--force");
const unknown = names.filter((n) => !(n in VARIANTS));
if (names.length === 0 || unknown.length > 0) {
  console.error(`build-wasm: ${unknown.length ? `unknown variant ${unknown.join(", ")}` : "no variant given"}; expected one or more of ${Object.keys(VARIANTS).join(", ")} [--force]`);
  process.exit(2);
}

/** SHA-256 over a variant's asc flags, the AssemblyScript version and every assembly/ file (path and bytes, in path order). */
function inputsHash(ascFlags) {
  const hash = createHash("sha256");
  hash.update(JSON.stringify(ascFlags));
  hash.update(readFileSync(path.join(ROOT, "node_modules", "assemblyscript", "package.json")));
  const dir = path.join(ROOT, "assembly");
  const files = readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.relative(dir, path.join(e.parentPath, e.name)))
    .sort();
  for (const f of files) hash.update(`\0${f}\0`).update(readFileSync(path.join(dir, f)));
  return hash.digest("hex");
}

for (const name of names) {
  const { out, flags } = VARIANTS[name];
  const ascFlags = [...COMMON, ...flags];
  const partial = out.replace(/\.wasm$/, ".partial.wasm"); // renamed to `out` once asc has finished
  const stamp = path.join(ROOT, out.replace(/\.wasm$/, ".stamp"));
  const hash = inputsHash(ascFlags);
  if (!force && existsSync(path.join(ROOT, out)) && existsSync(stamp) && readFileSync(stamp, "utf8").trim() === hash) {
    console.log(`${out} is up to date (assembly/ unchanged since its build)`);
    continue;
  }
  const started = Date.now();
  console.log(`${out}: building (${name}; about 3 minutes)`);
  const asc = path.join(ROOT, "node_modules", "assemblyscript", "bin", "asc.js");
  const run = spawnSync(process.execPath, [asc, "assembly/index.ts", "-o", partial, ...ascFlags], { cwd: ROOT, stdio: "inherit" });
  if (run.status !== 0) {
    rmSync(path.join(ROOT, partial), { force: true });
    console.error(`build-wasm: asc failed for ${out} (exit ${run.status ?? run.signal})`);
    process.exit(1);
  }
  // the output and then its stamp, each by rename: an interrupted build leaves no stamp that vouches for it
  rmSync(stamp, { force: true });
  renameSync(path.join(ROOT, partial), path.join(ROOT, out));
  writeFileSync(`${stamp}.tmp`, hash + "\n");
  renameSync(`${stamp}.tmp`, stamp);
  console.log(`${out}: built in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}
