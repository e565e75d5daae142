/**
 * The memory planner: KV bytes per token against the format arithmetic (DESIGN.md's TinyLlama memory check),
 * the longest context in a budget (it fits, one more token does not), and `kvsplit plan` on a synthetic model (its
 * totals the memory limits loading accepts, for the same threads and batch size).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import path from "node:path";
import { parseByteSize, planRows } from "../../src/eval/plan.js";
import { parseKvConfigList } from "../../src/kv/shorthand.js";
import type { ModelConfig } from "../../src/model/config.js";
import { MemoryPlanError, planMemory } from "../../src/model/memory.js";
import { loadModel } from "../../src/model/model.js";
import { synthToFile } from "../../src/gguf/synth.js";
import { DEFAULT_BATCH_SIZE } from "../../src/model/defaults.js";
import { REPO_ROOT } from "../helpers/shared.js";

/** TinyLlama-1.1B's attention shape: 22 layers, 4 kv heads, head_dim 64. */
const tinyLlama = {
  architecture: "llama", dim: 2048, nLayers: 22, nHeads: 32, nKvHeads: 4, headDim: 64, kvDim: 256, ffnDim: 5632,
  nVocab: 32000, contextLength: 2048, normEps: 1e-5, ropeBase: 10000, ropeDim: 64,
} as unknown as ModelConfig;
const MiB = 1024 * 1024;

test("KV bytes at 8192 tokens match the format arithmetic: F16 176.00, K8V8 93.50, K8V4 71.50, K4V4 49.50 MiB", () => {
  const rows = planRows({ config: tinyLlama, weightsBytes: 1.1e9 }, parseKvConfigList("F16,K8V8,K8V4,K4V8,K4V4"), { ctx: 8192 });
  assert.deepEqual(
    rows.map((r) => [r.config, r.bytes! / MiB]),
    [["F16", 176], ["K8V8", 93.5], ["K8V4", 71.5], ["K4V8", 71.5], ["K4V4", 49.5]],
  );
  // per token: layers × kvDim × (bytes per K value + bytes per V value)
  assert.equal(rows[2].kv_bytes_per_token, 22 * 256 * (34 / 32 + 18 / 32));
  assert.ok(rows.every((r) => r.fits && r.total_bytes! > r.bytes! + 1.1e9));
});

test("the longest context in a budget fits, and one more token does not", () => {
  const model = { config: tinyLlama, weightsBytes: 1.1e9 };
  const budget = 2 * 1024 ** 3;
  const rows = planRows(model, parseKvConfigList("F16,K8V4,K4V4"), { memory: budget });
  for (const r of rows) {
    const kv = { k: r.k, v: r.v } as const;
    assert.ok(planMemory(tinyLlama, 1.1e9, r.max_ctx!, kv as never, { available: budget }).total <= budget, `${r.config} at ${r.max_ctx}`);
    assert.ok(planMemory(tinyLlama, 1.1e9, r.max_ctx! + 1, kv as never, { available: budget }).total > budget, `${r.config} at ${r.max_ctx! + 1}`);
  }
  // fewer bytes per token, more context
  assert.ok(rows[0].max_ctx! < rows[1].max_ctx! && rows[1].max_ctx! < rows[2].max_ctx!);
  // a budget past 4 GiB is not capped by one WebAssembly memory: the cache spreads over several
  const [big] = planRows(model, parseKvConfigList("F16"), { memory: 64 * 1024 ** 3 });
  const [four] = planRows(model, parseKvConfigList("F16"), { memory: 4 * 1024 ** 3 });
  assert.ok(big.max_ctx! > 10 * four.max_ctx!, `${big.max_ctx} vs ${four.max_ctx}`);
  assert.ok(big.shards! > 10 && big.beyond_trained === true);
});

test("memory sizes parse with binary and decimal units; anything else names the value", () => {
  assert.equal(parseByteSize("8GiB"), 8 * 1024 ** 3);
  assert.equal(parseByteSize("512 MiB"), 512 * MiB);
  assert.equal(parseByteSize("6GB"), 6e9);
  assert.equal(parseByteSize("1000"), 1000);
  for (const bad of ["", "3XB", "-1GiB", "GiB", "0"]) assert.throws(() => parseByteSize(bad), new RegExp(`'${bad}' is not a memory size`));
});

test("kvsplit plan: JSON rows from the header, and exit 2 for a bad budget or both/neither of --memory and -c", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-plan-"));
  try {
    const file = path.join(dir, "tiny.gguf");
    synthToFile({ preset: "tiny", type: "q8_0", seed: 3 }, file);
    const cli = (...args: string[]) =>
      spawnSync(process.execPath, [path.join(REPO_ROOT, "dist", "src", "cli", "main.js"), "plan", "-m", file, ...args], { encoding: "utf8" });
    const ok = cli("-c", "512", "--configs", "F16,K4V4", "--json");
    assert.equal(ok.status, 0, ok.stderr);
    const out = JSON.parse(ok.stdout) as { rows: Array<{ config: string; kv_bytes_per_token: number; bytes: number }> };
    // tiny: 2 layers, kvDim 64
    assert.deepEqual(out.rows.map((r) => [r.config, r.kv_bytes_per_token, r.bytes]), [
      ["F16", 2 * 64 * 4, 512 * 2 * 64 * 4],
      ["K4V4", 2 * 2 * 2 * 18, 512 * 2 * 2 * 2 * 18],
    ]);
    const budget = cli("--memory", "64MiB");
    assert.equal(budget.status, 0, budget.stderr);
    assert.match(budget.stdout, /max context/);
    for (const [args, message] of [
      [["--memory", "lots"], /'lots' is not a memory size/],
      [[], /exactly one of --memory/],
      [["--configs", "K9V4", "-c", "10"], /K9V4/],
    ] as const) {
      const r = cli(...args);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("kvsplit plan sizes the scratch as loading does (-t, -b): its total is the least memory limit loadModel accepts", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-plan-"));
  try {
    const file = path.join(dir, "tiny.gguf");
    synthToFile({ preset: "tiny", type: "q8_0", seed: 3 }, file);
    const plan = (...args: string[]) => {
      const r = spawnSync(process.execPath, [path.join(REPO_ROOT, "dist", "src", "cli", "main.js"), "plan", "-m", file, "--configs", "K8V4", "--json", ...args], { encoding: "utf8" });
      assert.equal(r.status, 0, r.stderr);
      return JSON.parse(r.stdout) as { threads: number; batch_size: number; rows: Array<{ total_bytes: number; max_ctx: number }> };
    };
    const sized = plan("-c", "512", "-t", "2", "-b", "128");
    assert.equal(sized.threads, 2);
    assert.equal(sized.batch_size, 128);
    const total = sized.rows[0].total_bytes;
    const kv = { k: "q8_0", v: "q4_0" } as const;
    const load = (memoryLimit: number) => loadModel(file, { threads: 2, batchSize: 128, memoryLimit, session: { contextSize: 512, kv } });
    load(total).dispose();
    assert.throws(() => load(total - 1), MemoryPlanError);
    // a batch's activations and logits are scratch: more tokens a pass, more memory, less context in a budget
    assert.ok(plan("-c", "512", "-t", "2", "-b", "1").rows[0].total_bytes < total);
    const budget = ["--memory", String(total)];
    assert.ok(plan(...budget, "-t", "2", "-b", "1").rows[0].max_ctx > plan(...budget, "-t", "2", "-b", "512").rows[0].max_ctx);
    // the defaults are loading's: the machine's threads, DEFAULT_BATCH_SIZE
    const defaults = plan("-c", "512");
    assert.equal(defaults.threads, availableParallelism());
    assert.equal(defaults.batch_size, DEFAULT_BATCH_SIZE);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
