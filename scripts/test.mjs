// Runs the built test suite (dist/test/**/*.test.js; build first) under one or more Node runtimes, one after another.
//
//   node scripts/test.mjs              the Node running this script (Node 24 in npm scripts: the `node` devDependency)
//   node scripts/test.mjs --fallback   the system Node 20 and the `node22` devDependency: the library still runs there
//   node scripts/test.mjs BIN...       the given node binaries
//
// The test files are listed here and passed by name, because `node --test DIR` walks the directory only on Node 20:
// from Node 21 its arguments are file globs, and a directory is loaded as a module ("Cannot find module").
// Each run prints its Node version first and a summary line last. Tests that need ../shared skip when it is absent
// (their reason starts with "needs ../shared"); any other skip is an error under CI (CI set) or --fallback, and a
// warning otherwise. --fallback's Node 20 is the first `node` on PATH outside node_modules (/usr/bin/node here), or
// $KVSPLIT_NODE20; each fallback runtime must have the expected major version.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../", import.meta.url));
const TEST_DIR = path.join(REPO_ROOT, "dist", "test");
const SHARED_SKIP = "needs ../shared";

function testFiles() {
  if (!existsSync(TEST_DIR)) fail(`${TEST_DIR} is missing: build first (npm run build)`);
  const files = readdirSync(TEST_DIR, { recursive: true })
    .filter((f) => f.endsWith(".test.js"))
    .map((f) => path.join("dist", "test", f))
    .sort();
  if (files.length === 0) fail(`no *.test.js under ${TEST_DIR}`);
  return files;
}

function fail(message) {
  console.error(`scripts/test.mjs: ${message}`);
  process.exit(1);
}

function versionOf(bin) {
  const r = spawnSync(bin, ["--version"], { encoding: "utf8" });
  if (r.status !== 0) fail(`${bin} --version failed: ${r.error?.message ?? r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The first `node` on PATH that is not an npm-installed one (npm scripts put node_modules/.bin dirs first). */
function systemNode() {
  for (const dir of (process.env.PATH ?? "").split(path.delimiter)) {
    if (dir === "" || dir.split(path.sep).includes("node_modules")) continue;
    const bin = path.join(dir, "node");
    if (existsSync(bin)) return bin;
  }
  fail("no node outside node_modules on PATH; set KVSPLIT_NODE20 to a Node 20 binary");
}

function fallbackRuntimes() {
  return [
    { bin: process.env.KVSPLIT_NODE20 ?? systemNode(), major: 20, from: process.env.KVSPLIT_NODE20 ? "$KVSPLIT_NODE20" : "the system Node" },
    { bin: path.join(REPO_ROOT, "node_modules", "node22", "bin", "node"), major: 22, from: "the node22 devDependency" },
  ];
}

/** Skipped tests in a TAP report: `ok N - name # SKIP reason` at any nesting depth. */
function skipsIn(tap) {
  const skips = [];
  for (const line of tap.split("\n")) {
    const m = /^\s*ok \d+ - (.*?) # SKIP\s*(.*)$/.exec(line);
    if (m) skips.push({ name: m[1], reason: m[2] });
  }
  return skips;
}

function runSuite({ bin, major, from }, files, strictSkips) {
  const version = versionOf(bin);
  if (major !== undefined && !version.startsWith(`v${major}.`)) fail(`${from} (${bin}) is ${version}, expected Node ${major}`);
  console.log(`\n=== kvsplit tests on Node ${version} (${bin}${from ? `, ${from}` : ""}): ${files.length} files ===\n`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "kvsplit-test-"));
  const tapFile = path.join(tmp, "report.tap");
  const start = performance.now();
  const r = spawnSync(
    bin,
    ["--test", "--test-reporter=spec", "--test-reporter-destination=stdout", "--test-reporter=tap", `--test-reporter-destination=${tapFile}`, ...files],
    { cwd: REPO_ROOT, stdio: "inherit" },
  );
  const seconds = (performance.now() - start) / 1000;
  const tap = existsSync(tapFile) ? readFileSync(tapFile, "utf8") : "";
  rmSync(tmp, { recursive: true, force: true });
  const count = (key) => Number(new RegExp(`^# ${key} (\\d+)$`, "m").exec(tap)?.[1] ?? NaN);
  const skips = skipsIn(tap);
  const otherSkips = skips.filter((s) => !s.reason.startsWith(SHARED_SKIP));
  const passed = r.status === 0 && !(strictSkips && otherSkips.length > 0);
  console.log(
    `\n=== Node ${version}: ${passed ? "PASS" : "FAIL"} (exit ${r.status ?? r.signal}), ${count("tests")} tests: ${count("pass")} passed, ` +
      `${count("fail")} failed, ${count("skipped")} skipped; skips for lack of ../shared: ${skips.length - otherSkips.length}, ` +
      `for other reasons: ${otherSkips.length}; in ${seconds.toFixed(1)} s ===`,
  );
  for (const s of otherSkips) console.log(`${strictSkips ? "error" : "warning"}: skipped for a reason other than ../shared: ${s.name}: ${s.reason}`);
  return { version, passed, seconds };
}

const args = process.argv.slice(2);
const fallback = args.includes("--fallback");
const runtimes = fallback ? fallbackRuntimes() : args.length > 0 ? args.map((bin) => ({ bin })) : [{ bin: process.execPath }];
const strictSkips = fallback || Boolean(process.env.CI);
// The browser tests drive Chromium from Node: they run once, with the suite's own Node, not again per fallback runtime.
const files = testFiles().filter((f) => !(fallback && f.startsWith(path.join("dist", "test", "browser") + path.sep)));
const results = runtimes.map((rt) => runSuite(rt, files, strictSkips));
if (results.length > 1) {
  console.log("\n=== summary ===");
  for (const r of results) console.log(`Node ${r.version}: ${r.passed ? "PASS" : "FAIL"} in ${r.seconds.toFixed(1)} s`);
}
process.exit(results.every((r) => r.passed) ? 0 : 1);
