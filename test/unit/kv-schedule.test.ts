/**
 * Per-layer K/V schedules (src/kv/schedule.ts, `--kv-schedule`):
 *   1. the file format: what parses, the round trip of kvScheduleJson, and every malformed file refused with a
 *      message naming the file and the problem;
 *   2. a schedule giving every layer the same pair is that pair: identical tokens, perplexity and bytes through the CLI;
 *      a mixed schedule's bytes are the per-layer sum, and its quality lies between its pairs';
 *   3. the commands: run, perplexity, compare, bench, plan take it; a schedule for another layer count, or combined
 *      with --kv / -ctk, exits 2 with a clear message; bench --vs llama.cpp refuses it (one type for every layer).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { runCli, type CliRun } from "../helpers/cli.js";
import { useModelDir } from "../helpers/model-dir.js";
import { kvScheduleJson, parseKvSchedule, readKvSchedule, KvScheduleError } from "../../src/kv/schedule.js";
import { configOfSchedule, exactOptions, resolveKvFlags } from "../../src/kv/shorthand.js";
import { getKvFormat, rowBytes } from "../../src/formats/table.js";

/** head_dim 32, 3 layers: every block format applies and a schedule can differ per layer. */
const md = useModelDir("schedule", { dim: 64, nLayers: 3, nHeads: 2, nKvHeads: 1, ffnDim: 128, vocabSize: 320, contextLength: 64 }, 3);
const kvsplit = (...args: string[]): CliRun => runCli(md.dir, args);
function schedule(name: string, layers: { k: string; v: string }[] | unknown): string {
  const file = path.join(md.dir, name);
  writeFileSync(file, typeof layers === "string" ? layers : JSON.stringify({ kvsplit_schedule: 1, layers }));
  return file;
}
function assertBadInput(r: CliRun, message: RegExp): void {
  assert.equal(r.code, 2, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+/, "no stack trace");
}

test("schedule files: parsed with format names in any case; kvScheduleJson round-trips; malformed ones are refused", () => {
  const s = parseKvSchedule('{"layers": [{"k": "Q8_0", "v": "q4_0"}, {"layer": 1, "k": "f16", "v": "IQ4_NL"}], "model": "m", "expected": {"kld": 1e-3}}', "a.json");
  assert.deepEqual(s.layers, [{ k: "q8_0", v: "q4_0" }, { k: "f16", v: "iq4_nl" }]);
  assert.equal(s.name, "schedule:a.json");
  assert.deepEqual(s.extras, { model: "m", expected: { kld: 1e-3 } });
  const back = parseKvSchedule(kvScheduleJson(s.layers, s.extras), "b.json");
  assert.deepEqual(back.layers, s.layers);
  assert.deepEqual(back.extras, s.extras);
  const cfg = configOfSchedule(s);
  assert.deepEqual([cfg.k, cfg.v], ["mixed", "mixed"]);
  assert.equal(configOfSchedule(parseKvSchedule('{"layers": [{"k": "q8_0", "v": "q4_0"}, {"k": "q8_0", "v": "f16"}]}', "c.json")).k, "q8_0");
  // per-layer windows and sinks: parsed, and written back one line per layer
  const exact = parseKvSchedule('{"window": 8, "layers": [{"k": "iq3_nl", "v": "iq2_nl", "window": 32, "sinks": 4}, {"k": "q4_0", "v": "q4_0", "window": 0}]}', "d.json");
  assert.deepEqual(exact.layers, [{ k: "iq3_nl", v: "iq2_nl", window: 32, sinks: 4 }, { k: "q4_0", v: "q4_0", window: 0 }]);
  assert.equal(exact.window, 8);
  const text = kvScheduleJson(exact.layers, {}, 8);
  assert.match(text, /\{ "layer": 0, "k": "iq3_nl", "v": "iq2_nl", "window": 32, "sinks": 4 \}/);
  assert.deepEqual(parseKvSchedule(text, "e.json").layers, exact.layers);
  // "exact_format": "q8_0" keeps the windows' rows in q8_0: parsed, written back, carried into the config
  const q8 = parseKvSchedule('{"window": 32, "exact_format": "q8_0", "layers": [{"k": "iq3_e8", "v": "iq2_e8"}, {"k": "q4_0", "v": "q4_0"}]}', "q.json");
  assert.equal(q8.exactFormat, "q8_0");
  assert.deepEqual(exactOptions(configOfSchedule(q8)), { kvWindow: 32, kvExactFormat: "q8_0" });
  assert.equal(parseKvSchedule(kvScheduleJson(q8.layers, {}, 32, "q8_0"), "r.json").exactFormat, "q8_0");
  assert.equal(parseKvSchedule(kvScheduleJson(q8.layers, {}, 32), "s.json").exactFormat, undefined);

  const bad: [string, RegExp][] = [
    ["{", /x\.json: not valid JSON/],
    ["[]", /must be a JSON object with a "layers" array/],
    ['{"layers": []}', /"layers" must be a non-empty array/],
    ['{"layers": [{"k": "q8_0"}]}', /layer 0 "v" must be a K\/V format name/],
    ['{"layers": [{"k": "q3_K", "v": "q4_0"}]}', /layer 0 "k": .*'q3_K'/],
    ['{"layers": [{"k": "q8_0", "v": "q4_0", "windows": 16}]}', /layer 0: unknown key "windows"/],
    ['{"layers": [{"k": "q8_0", "v": "q4_0", "window": 1.5}]}', /layer 0 "window" must be a whole number of positions/],
    ['{"window": 8, "exact_format": "q4_0", "layers": [{"k": "q8_0", "v": "q4_0"}]}', /"exact_format" must be "f16" or "q8_0"/],
    ['{"layers": [{"k": "q8_0", "v": "q4_0", "sinks": "4"}]}', /layer 0 "sinks" must be a whole number of positions/],
    ['{"layers": [{"k": "q8_0", "v": "q4_0"}], "windows": 1}', /unknown key "windows"/],
    ['{"layers": [{"layer": 1, "k": "q8_0", "v": "q4_0"}]}', /entry 0 says "layer": 1/],
    ['{"kvsplit_schedule": 2, "layers": [{"k": "q8_0", "v": "q4_0"}]}', /"kvsplit_schedule": 2 is not a version/],
    ['{"layers": ["K8V4"]}', /layer 0: expected an object/],
  ];
  for (const [text, message] of bad) {
    assert.throws(() => parseKvSchedule(text, "x.json"), (e: unknown) => e instanceof KvScheduleError && message.test((e as Error).message), text);
  }
  assert.throws(() => readKvSchedule(path.join(md.dir, "missing.json")), /missing\.json: K\/V schedule file not found/);
  assert.throws(() => resolveKvFlags({ schedule: "s.json", ctk: "q8_0" }), /'--kv-schedule s\.json' conflicts with '-ctk q8_0'/);
});

test("a uniform schedule equals its pair: the same tokens, perplexity and bytes", () => {
  const uniform = schedule("uniform.json", [{ k: "q8_0", v: "q4_0" }, { k: "q8_0", v: "q4_0" }, { k: "q8_0", v: "q4_0" }]);
  const runArgs = ["run", "-m", md.modelPath, "-p", "Once upon a time", "-n", "12", "--temp", "0", "--json"];
  const viaPair = JSON.parse(kvsplit(...runArgs, "--kv", "K8V4").stdout) as { tokens: number[]; kv: { bytes: number } };
  const viaSchedule = kvsplit(...runArgs, "--kv-schedule", uniform);
  assert.equal(viaSchedule.code, 0, viaSchedule.stderr);
  const s = JSON.parse(viaSchedule.stdout) as { tokens: number[]; kv: { k: string; v: string; bytes: number; layers: unknown[] } };
  assert.deepEqual(s.tokens, viaPair.tokens);
  assert.equal(s.kv.bytes, viaPair.kv.bytes);
  assert.deepEqual([s.kv.k, s.kv.v, s.kv.layers.length], ["q8_0", "q4_0", 3]);

  const pplArgs = ["perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "3", "--json"];
  const p1 = JSON.parse(kvsplit(...pplArgs, "--kv", "K8V4").stdout) as { ppl: number; kv_bytes: number };
  const p2 = JSON.parse(kvsplit(...pplArgs, "--kv-schedule", uniform).stdout) as { ppl: number; kv_bytes: number };
  assert.equal(p2.ppl, p1.ppl);
  assert.equal(p2.kv_bytes, p1.kv_bytes);
});

test("a mixed schedule: bytes are the per-layer sum; compare, plan and bench take it; wrong layer counts exit 2", () => {
  const mixed = schedule("mixed.json", [{ k: "f16", v: "q8_0" }, { k: "q8_0", v: "q4_0" }, { k: "q4_0", v: "q4_0" }]);
  const row = (f: string) => rowBytes(getKvFormat(f), 32);
  const perToken = row("f16") + row("q8_0") + row("q8_0") + row("q4_0") + row("q4_0") + row("q4_0");

  const out = path.join(md.dir, "cmp");
  const c = kvsplit("compare", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "3", "--configs", "K8V8,K4V4", "--no-sensitivity",
    "--kv-schedule", mixed, "--speed-reps", "1", "--no-plots", "--out", out, "--json");
  assert.equal(c.code, 0, c.stderr);
  const rows = (JSON.parse(c.stdout) as { rows: { config: string; k: string; v: string; kv_bytes_per_token: number; kld_mean: number }[] }).rows;
  const sched = rows.find((r) => r.config === "schedule:mixed.json")!;
  assert.deepEqual([sched.k, sched.v, sched.kv_bytes_per_token], ["mixed", "mixed", perToken]);
  const kld = (name: string) => rows.find((r) => r.config === name)!.kld_mean;
  assert.ok(kld("K8V8") < sched.kld_mean && sched.kld_mean < kld("K4V4"), `K8V8 ${kld("K8V8")} < schedule ${sched.kld_mean} < K4V4 ${kld("K4V4")}`);

  const plan = JSON.parse(kvsplit("plan", "-m", md.modelPath, "-c", "64", "--configs", "F16", "--kv-schedule", mixed, "--json").stdout) as { rows: { config: string; kv_bytes_per_token: number; bytes: number }[] };
  assert.deepEqual(plan.rows.map((r) => [r.config, r.kv_bytes_per_token, r.bytes]), [["F16", 3 * 2 * row("f16"), 64 * 3 * 2 * row("f16")], ["schedule:mixed.json", perToken, 64 * perToken]]);

  const bench = kvsplit("bench", "-m", md.modelPath, "--configs", "F16", "--kv-schedule", mixed, "--depth", "8", "-p", "8", "-n", "2", "--reps", "1", "-t", "1", "--json");
  assert.equal(bench.code, 0, bench.stderr);
  const benchRows = (JSON.parse(bench.stdout) as { rows: { config: string; kv_bytes: number; tg_tps: number }[] }).rows;
  assert.deepEqual(benchRows.map((r) => r.config), ["F16", "schedule:mixed.json"]);
  assert.ok(benchRows.every((r) => r.tg_tps > 0));
  assertBadInput(kvsplit("bench", "-m", md.modelPath, "--configs", "F16", "--kv-schedule", mixed, "--vs", "llama.cpp"), /--kv-schedule schedule:mixed\.json: llama\.cpp has one K\/V type for every layer/);

  const two = schedule("two.json", [{ k: "q8_0", v: "q4_0" }, { k: "q8_0", v: "q4_0" }]);
  const wrong = /two\.json: the schedule has 2 layers but the model has 3/;
  assertBadInput(kvsplit("run", "-m", md.modelPath, "-p", "hi", "-n", "1", "--kv-schedule", two), wrong);
  assertBadInput(kvsplit("perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--kv-schedule", two), wrong);
  assertBadInput(kvsplit("compare", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--kv-schedule", two), wrong);
  assertBadInput(kvsplit("plan", "-m", md.modelPath, "-c", "64", "--kv-schedule", two), wrong);
  assertBadInput(kvsplit("bench", "-m", md.modelPath, "--kv-schedule", two), wrong);
  assertBadInput(kvsplit("run", "-m", md.modelPath, "-p", "hi", "--kv-schedule", mixed, "-ctv", "q4_0"), /conflicts with '-ctv q4_0'/);
  assertBadInput(kvsplit("run", "-m", md.modelPath, "-p", "hi", "--kv-schedule", schedule("broken.json", "{not json")), /broken\.json: not valid JSON/);
});
