/**
 * `kvsplit bench` on a tiny synthetic model: the method (what is evaluated, in which order, how many tokens) with a
 * recording engine, the KV-byte arithmetic against DESIGN.md's memory check, the JSON contract and the exit codes of
 * the built CLI, and the llama.cpp side when node-llama-cpp is installed. No assert looks at a time.
 * Build first: npx tsc -p tsconfig.json && npm run build:wasm.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { synthToFile } from "../../src/gguf/synth.js";
import {
  BENCH_BATCH_SIZE,
  benchContextSize,
  benchTokens,
  kvBytesByArithmetic,
  measureRun,
  median,
  type BenchEngineSession,
  type BenchJob,
} from "../../src/eval/bench.js";
import { runJobInChild } from "../../src/eval/bench-runner.js";
import { runCli, type CliRun } from "../helpers/cli.js";

let dir = "";
let tinyModel = "";
/** The tiny preset: 2 layers, 1 KV head of head_dim 64 (kvDim 64), vocabulary 512. */
const TINY = { nLayers: 2, kvDim: 64, nVocab: 512 };
/** Bytes per value from DESIGN.md section 3 (bytes per block / values per block), written out independently. */
const BYTES_PER_VALUE: Record<string, number> = { f16: 2, q8_0: 34 / 32, q4_0: 18 / 32, q5_0: 22 / 32 };

const kvsplit = (...args: string[]): CliRun => runCli(dir, args);

function expectedKvBytes(k: string, v: string, contextSize: number): number {
  return TINY.nLayers * contextSize * TINY.kvDim * (BYTES_PER_VALUE[k]! + BYTES_PER_VALUE[v]!);
}

const nodeLlamaCppSkip = await import("node-llama-cpp").then(
  () => false as const,
  () => "node-llama-cpp is not installed (optional: only --vs llama.cpp needs it)",
);

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "kvsplit-bench-"));
  tinyModel = path.join(dir, "tiny.gguf");
  synthToFile({ preset: "tiny", type: "q8_0", seed: 3 }, tinyModel);
  writeFileSync(path.join(dir, "not-a-model.gguf"), "plain text, not GGUF\n");
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("median, seeded tokens and the padded context size", () => {
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 10]), 3.5);
  assert.throws(() => median([]), /empty/);
  const a = benchTokens(1000, 512, 7);
  assert.deepEqual(a, benchTokens(1000, 512, 7), "same seed, same tokens");
  assert.notDeepEqual(a, benchTokens(1000, 512, 8));
  assert.ok(a.every((t) => Number.isInteger(t) && t >= 0 && t < 512));
  assert.ok(new Set(a).size > 400, "tokens spread over the vocabulary");
  // max(p, deepest depth + n) + 1, rounded up to 256 as llama.cpp pads.
  assert.equal(benchContextSize([512, 2048], 512, 32), 2304);
  assert.equal(benchContextSize([64], 32, 4), 256);
  assert.equal(benchContextSize([0], 600, 4), 768);
  assert.equal(benchContextSize([224], 8, 31), 256);
  assert.equal(benchContextSize([224], 8, 32), 512);
});

test("KV bytes by the format arithmetic match DESIGN.md's TinyLlama memory check at 8192 tokens", () => {
  const mib = (k: "f16" | "q8_0" | "q4_0", v: "f16" | "q8_0" | "q4_0") => kvBytesByArithmetic(k, v, 22, 4 * 64, 8192) / 1024 ** 2;
  assert.equal(mib("f16", "f16"), 176.0);
  assert.equal(mib("q8_0", "q8_0"), 93.5);
  assert.equal(mib("q8_0", "q4_0"), 71.5);
  assert.equal(mib("q4_0", "q4_0"), 49.5);
});

test("the method: pp from an empty cache in one batch, then each depth filled and n single-token steps", async () => {
  const events: string[] = [];
  let position = 0;
  const engine: BenchEngineSession = {
    get position() {
      return position;
    },
    reset() {
      events.push("reset");
      position = 0;
    },
    evalBatch(tokens) {
      assert.ok(tokens.length >= 1 && tokens.length <= BENCH_BATCH_SIZE, `batch of ${tokens.length}`);
      events.push(`batch ${position}+${tokens.length}`);
      position += tokens.length;
    },
    generate(first, count) {
      assert.ok(Number.isInteger(first) && first >= 0 && first < 100);
      events.push(`gen ${position}+${count}`);
      position += count;
    },
  };
  const job: BenchJob = {
    engine: "kvsplit", modelPath: "unused", config: "F16", k: "f16", v: "f16", depths: [40, 600, 620],
    promptTokens: 50, genTokens: 30, threads: 1, contextSize: 1024, nVocab: 100, nLayers: 1, kvDim: 32, seed: 1,
  };
  const { ppTps, tgTps } = await measureRun(engine, job);
  assert.ok(ppTps > 0 && Number.isFinite(ppTps));
  assert.equal(tgTps.length, 3);
  assert.deepEqual(events, [
    "batch 0+8", "gen 8+2", "reset", // warm-up
    "batch 0+50", // pp: 50 tokens from an empty cache
    "reset", "batch 0+40", "gen 40+30", // depth 40 < 50 cached: start again
    "batch 70+512", "batch 582+18", "gen 600+30", // depth 600: filled in batches of at most 512
    "reset", "batch 0+512", "batch 512+108", "gen 620+30", // depth 620 < 630 cached: start again
  ]);
});

test("bench --json: one object whose rows follow the contract, kv_bytes equal to the format arithmetic", () => {
  const r = kvsplit("bench", "-m", tinyModel, "--configs", "F16,K8V4,K4V8", "--depth", "40,16", "-p", "8", "-n", "3", "--reps", "2", "-t", "1", "--json");
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, "one line of JSON on stdout");
  const report = JSON.parse(lines[0]!) as { rows: Record<string, unknown>[]; context_size: number; depths: number[]; threads: number };
  assert.deepEqual(report.depths, [16, 40]);
  assert.equal(report.threads, 1);
  assert.equal(report.context_size, 256);
  assert.equal(report.rows.length, 3 * 2);
  const formats: Record<string, [string, string]> = { F16: ["f16", "f16"], K8V4: ["q8_0", "q4_0"], K4V8: ["q4_0", "q8_0"] };
  for (const row of report.rows) {
    for (const key of ["engine", "config", "depth", "pp_tps", "tg_tps", "kv_bytes", "rss_peak_bytes"]) assert.ok(key in row, `row has ${key}`);
    assert.equal(row.engine, "kvsplit");
    const [k, v] = formats[row.config as string]!;
    assert.equal(row.k, k);
    assert.equal(row.v, v);
    assert.ok([16, 40].includes(row.depth as number));
    assert.equal(row.kv_bytes, expectedKvBytes(k, v, 256), `${row.config} kv_bytes`);
    assert.equal(row.runs, 2);
    for (const m of ["pp_tps", "tg_tps"] as const) {
      const runs = row[`${m}_runs`] as number[];
      assert.equal(runs.length, 2);
      assert.ok(runs.every((x) => Number.isFinite(x) && x > 0));
      assert.equal(row[m], (runs[0]! + runs[1]!) / 2, `${m} is the median of its runs`);
    }
    assert.ok((row.rss_peak_bytes as number) > 16 * 1024 * 1024, "peak RSS of a Node process is tens of MiB at least");
  }
  assert.match(r.stderr, /run 6\/6: kvsplit K4V8 rep 2\/2/);
});

test("bench without --json prints the table on stdout, one line per config and depth", () => {
  const r = kvsplit("bench", "-m", tinyModel, "--configs", "K8V8", "--depth", "8,24", "-p", "4", "-n", "2", "--reps", "1", "-t", "1");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /\| config \| depth \| pp4 t\/s \| tg2 t\/s \| KV MiB \| peak RSS MiB \| runs \|/);
  assert.match(r.stdout, /^\| K8V8 \| 8 \| [\d.]+ \| [\d.]+ \| 0\.07 \| [\d.]+ \| 1 \|$/m);
  assert.match(r.stdout, /^\| K8V8 \| 24 \| /m);
  assert.match(r.stderr, /run 1\/1: kvsplit K8V8 rep 1\/1: pp [\d.]+ t\/s/);
});

test("bad arguments and bad model files exit 2 with one line naming the problem", () => {
  const cases: Array<[string[], RegExp]> = [
    [["--configs", "K3V9"], /K3V9/],
    [["--depth", "12,deep"], /--depth 12,deep: 'deep' is not a cache depth/],
    [["-p", "0"], /n-prompt/],
    [["--reps", "0"], /reps/],
    [["--vs", "ollama"], /ollama.*llama\.cpp/],
  ];
  for (const [args, message] of cases) {
    const r = kvsplit("bench", "-m", tinyModel, ...args);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.equal(r.stdout, "");
  }
  const missing = kvsplit("bench", "-m", "nowhere.gguf");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nowhere\.gguf: model file not found/);
  const notGguf = kvsplit("bench", "-m", "not-a-model.gguf", "--configs", "F16", "--depth", "4", "-p", "2", "-n", "1", "--reps", "1");
  assert.equal(notGguf.code, 2);
  assert.equal(notGguf.stderr.trim().split("\n").length, 1, notGguf.stderr);
  assert.equal(notGguf.stdout, "");
});

test("a failing run in the child process keeps its error's name (so the CLI keeps its exit code)", async () => {
  const job: BenchJob = {
    engine: "kvsplit", modelPath: path.join(dir, "not-a-model.gguf"), config: "F16", k: "f16", v: "f16", depths: [4],
    promptTokens: 2, genTokens: 1, threads: 1, contextSize: 256, nVocab: 512, nLayers: 2, kvDim: 64, seed: 1,
  };
  await assert.rejects(runJobInChild(job), (err: Error) => err.name === "GgufError" && /kvsplit F16: /.test(err.message));
});

test("--vs llama.cpp: rows for both engines, llama.cpp's kv_bytes by the arithmetic at its context size", { skip: nodeLlamaCppSkip }, () => {
  const r = kvsplit("bench", "-m", tinyModel, "--configs", "F16,K8V4", "--depth", "16", "-p", "8", "-n", "2", "--reps", "1", "-t", "1", "--vs", "llama.cpp", "--json");
  assert.equal(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { rows: Array<Record<string, number | string>>; engines: string[] };
  assert.deepEqual(report.engines, ["kvsplit", "llama.cpp"]);
  assert.deepEqual(report.rows.map((x) => `${x.engine} ${x.config} ${x.depth}`), [
    "kvsplit F16 16", "llama.cpp F16 16", "kvsplit K8V4 16", "llama.cpp K8V4 16",
  ]);
  for (const row of report.rows) {
    const [k, v] = row.config === "F16" ? ["f16", "f16"] : ["q8_0", "q4_0"];
    assert.equal(row.context_size, 256, `${row.engine} created the padded context`);
    assert.equal(row.kv_bytes, expectedKvBytes(k!, v!, 256), `${row.engine} ${row.config}`);
    assert.ok((row.pp_tps as number) > 0 && (row.tg_tps as number) > 0);
    assert.ok((row.rss_peak_bytes as number) > 16 * 1024 * 1024);
  }
  // The table shows the ratio column.
  const table = kvsplit("bench", "-m", tinyModel, "--configs", "K8V8", "--depth", "8", "-p", "4", "-n", "2", "--reps", "1", "-t", "1", "--vs", "llama.cpp");
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^\| K8V8 \| 8 \| [\d.]+ \| [\d.]+ \| [\d.]+× \| [\d.]+ \| [\d.]+ \| [\d.]+× \| 0\.07 \/ 0\.07 \| /m);
});

test("--vs llama.cpp refuses a quantized cache llama.cpp cannot hold (head_dim not whole blocks) before running", () => {
  const odd = path.join(dir, "hd48.gguf");
  synthToFile({ preset: { dim: 96, nHeads: 2, nKvHeads: 1 }, type: "f32", seed: 1 }, odd);
  const r = kvsplit("bench", "-m", odd, "--configs", "F16,K4V4", "--vs", "llama.cpp");
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--configs K4V4: llama\.cpp cannot store K as q4_0 for this model: head_dim 48/);
});
