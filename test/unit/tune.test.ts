/**
 * `kvsplit tune` (src/eval/tune.ts, src/cli/tune.ts):
 *   1. allocateSchedule is the exact optimum of its model: on random cost tables it equals a brute force over every
 *      combination (least summed cost within the byte budget), and refuses a budget below the smallest schedule;
 *   2. the command writes a schedule that --kv-schedule reads, within its budget, whose measured KLD on the
 *      calibration text is what it reports, plus the costs file and the heatmap; bad budgets exit 2 before measuring;
 *   3. it generalises (real model, ../shared): tuned on one part of the TinyStories sample, evaluated on another, the
 *      6.5-bit schedule beats K8V4 (6.5 bits) by a wide margin, and its held-out KLD is near the prediction.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { runCli, type CliRun } from "../helpers/cli.js";
import { seededRandom } from "../helpers/random.js";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";
import { useModelDir } from "../helpers/model-dir.js";
import { readKvSchedule } from "../../src/kv/schedule.js";
import { allocateSchedule, minimumBytesPerToken, type TuneCell, type TuneMeasurement } from "../../src/eval/tune.js";
import type { KvFormatName } from "../../src/formats/types.js";

const md = useModelDir("tune", { dim: 64, nLayers: 2, nHeads: 2, nKvHeads: 1, ffnDim: 128, vocabSize: 320, contextLength: 64 }, 7);
const kvsplit = (...args: string[]): CliRun => runCli(md.dir, args);

test("allocateSchedule equals a brute force over every combination; too small a budget is refused", () => {
  const rand = seededRandom(11);
  // kvDim 32: f16 64 B, q8_0 34 B, q5_0 22 B, q4_0 18 B per row
  const formats: { format: KvFormatName; rowBytes: number }[] = [{ format: "q8_0", rowBytes: 34 }, { format: "q5_0", rowBytes: 22 }, { format: "q4_0", rowBytes: 18 }];
  for (let trial = 0; trial < 40; trial++) {
    const nLayers = 2;
    const cells: TuneCell[] = [];
    for (let layer = 0; layer < nLayers; layer++) {
      for (const side of ["k", "v"] as const) {
        // cheaper formats cost more, but by random amounts
        let cost = rand() * 1e-4;
        for (const f of formats) {
          cells.push({ layer, side, format: f.format, rowBytes: f.rowBytes, kld: cost, cost });
          cost += rand() * 1e-3;
        }
      }
    }
    const m: TuneMeasurement = { nLayers, kvDim: 32, formats: formats.map((f) => f.format), f16Kld: 1e-7, cells };
    const budget = 4 * 18 + Math.floor(rand() * (4 * 64 - 4 * 18));
    // brute force: every (layer, side) in f16 or one of the formats
    const options = (layer: number, side: string) => [{ format: "f16", rowBytes: 64, cost: 0 }, ...cells.filter((c) => c.layer === layer && c.side === side)];
    const slots = [options(0, "k"), options(0, "v"), options(1, "k"), options(1, "v")];
    let bestCost = Infinity;
    for (let i = 0; i < 4 ** 4; i++) {
      const pick = slots.map((s, j) => s[Math.floor(i / 4 ** j) % 4]);
      const bytes = pick.reduce((a, p) => a + p.rowBytes, 0);
      const cost = pick.reduce((a, p) => a + p.cost, 0);
      if (bytes <= budget && cost < bestCost) bestCost = cost;
    }
    const choice = allocateSchedule(m, budget);
    assert.ok(choice.bytesPerToken <= budget, `trial ${trial}: ${choice.bytesPerToken} bytes within ${budget}`);
    assert.ok(Math.abs(choice.predictedKld - (1e-7 + bestCost)) < 1e-15, `trial ${trial}: DP ${choice.predictedKld} vs brute force ${1e-7 + bestCost}`);
    // the reported bytes and cost are those of the layers it returns
    const cellOf = (layer: number, side: "k" | "v") => {
      const f = choice.layers[layer][side];
      return f === "f16" ? { rowBytes: 64, cost: 0 } : cells.find((c) => c.layer === layer && c.side === side && c.format === f)!;
    };
    const chosen = [cellOf(0, "k"), cellOf(0, "v"), cellOf(1, "k"), cellOf(1, "v")];
    assert.equal(choice.bytesPerToken, chosen.reduce((a, c) => a + c.rowBytes, 0));
    assert.ok(Math.abs(choice.predictedKld - 1e-7 - chosen.reduce((a, c) => a + c.cost, 0)) < 1e-15);
    assert.equal(choice.bitsPerValue, (8 * choice.bytesPerToken) / (2 * 32 * 2));
  }
  const m: TuneMeasurement = { nLayers: 1, kvDim: 32, formats: ["q4_0"], f16Kld: 0, cells: [] };
  assert.throws(() => allocateSchedule(m, 10), /below the smallest schedule's 128/);
  assert.equal(minimumBytesPerToken(["q8_0", "q4_0"], 3, 32), 3 * 2 * 18);
});

test("tune writes a schedule within budget that --kv-schedule reads; its reported KLD is measured; bad budgets exit 2", () => {
  const out = path.join(md.dir, "sched.json");
  const r = kvsplit("tune", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--bits", "7", "--formats", "q8_0,q4_0", "-o", out, "--json");
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { layers: { k: string; v: string }[]; bits_per_value: number; kld_predicted: number; kld_measured_on_calibration: number; costs: TuneCell[] };
  assert.ok(j.bits_per_value <= 7, `${j.bits_per_value} bits`);
  assert.equal(j.costs.length, 2 * 2 * 2, "2 layers × K, V × 2 formats measured");
  const schedule = readKvSchedule(out);
  assert.deepEqual(schedule.layers, j.layers);
  assert.ok(existsSync(path.join(md.dir, "sched.costs.json")) && existsSync(path.join(md.dir, "sched.heatmap.svg")));
  assert.deepEqual([...readFileSync(path.join(md.dir, "sched.heatmap.png")).subarray(0, 4)], [0x89, 0x50, 0x4e, 0x47]);
  assert.ok(readFileSync(path.join(md.dir, "sched.heatmap.svg"), "utf8").includes("Sensitivity per layer"));

  // the same measurement by hand: an f32 base, then the schedule against it
  const base = path.join(md.dir, "base.kld");
  assert.equal(kvsplit("perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--kv", "F32", "--kl-divergence-base", base).code, 0);
  const check = JSON.parse(kvsplit("perplexity", "-m", md.modelPath, "--kl-divergence", base, "--kv-schedule", out, "--json").stdout) as { kld_mean: number; kv_bits_per_value: number };
  assert.equal(check.kld_mean, j.kld_measured_on_calibration);
  assert.equal(check.kv_bits_per_value, j.bits_per_value);

  // under a window kept in q8_0: its rows are counted as q8_0 in the budget and written into the schedule
  const outQ = path.join(md.dir, "sched-q8.json");
  const q = kvsplit("tune", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--bits", "9", "--formats", "q8_0,q4_0",
    "--kv-window", "8", "--kv-exact-format", "q8_0", "-o", outQ, "--json");
  assert.equal(q.code, 0, q.stderr);
  const jq = JSON.parse(q.stdout) as { bits_per_value: number; kld_measured_on_calibration: number };
  assert.ok(jq.bits_per_value <= 9, `${jq.bits_per_value} bits`);
  const scheduleQ = readKvSchedule(outQ);
  assert.deepEqual([scheduleQ.window, scheduleQ.exactFormat], [8, "q8_0"]);
  const checkQ = JSON.parse(kvsplit("perplexity", "-m", md.modelPath, "--kl-divergence", base, "--kv-schedule", outQ, "--json").stdout) as { kld_mean: number; kv_bits_per_value: number };
  assert.equal(checkQ.kld_mean, jq.kld_measured_on_calibration);
  assert.equal(checkQ.kv_bits_per_value, jq.bits_per_value);

  const bad = (args: string[], message: RegExp) => {
    const b = kvsplit("tune", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "-o", path.join(md.dir, "x.json"), ...args);
    assert.equal(b.code, 2, b.stderr);
    assert.match(b.stderr, message);
    assert.ok(!existsSync(path.join(md.dir, "x.costs.json")), "nothing measured");
  };
  bad([], /give exactly one budget/);
  bad(["--bits", "5", "--memory", "1MiB"], /cannot be used with|give exactly one budget/);
  bad(["--bits", "2"], /--bits 2 allows 32 bytes per token, below the smallest schedule's 36 \(2\.25 bits per value: every layer in the smallest of .*iq2_e8/);
  bad(["--memory", "100", "--formats", "q8_0"], /--memory 100 at -c 32 allows 3 bytes per token/);
  bad(["--bits", "5", "--formats", "q3_K"], /--formats: .*q3_K/);
  bad(["--bits", "5", "--formats", "f16"], /at least one format besides f16/);
  bad(["--bits", "5", "--kv-exact-format", "q4_0"], /--kv-exact-format.*q4_0.*Allowed choices are f16, q8_0/);
});

test("tuned on one text, evaluated on another: the 6.5-bit schedule beats K8V4 at the same bits", { skip: sharedSkip(sharedPaths.hd64, sharedPaths.evalText) }, () => {
  const text = readFileSync(sharedPaths.evalText, "utf8");
  writeFileSync(path.join(md.dir, "calib.txt"), text.slice(0, 40000));
  writeFileSync(path.join(md.dir, "heldout.txt"), text.slice(-40000));
  const out = path.join(md.dir, "real.json");
  const r = kvsplit("tune", "-m", sharedPaths.hd64, "-f", "calib.txt", "--chunks", "2", "--bits", "6.5", "--formats", "q8_0,q5_0,iq4_nl,q4_0", "-o", out, "--json");
  assert.equal(r.code, 0, r.stderr);
  const tuned = JSON.parse(r.stdout) as { bits_per_value: number; kld_predicted: number };
  const base = path.join(md.dir, "heldout.kld");
  assert.equal(kvsplit("perplexity", "-m", sharedPaths.hd64, "-f", "heldout.txt", "--chunks", "6", "--kv", "F32", "--kl-divergence-base", base).code, 0);
  const held = (args: string[]) => JSON.parse(kvsplit("perplexity", "-m", sharedPaths.hd64, "--kl-divergence", base, ...args, "--json").stdout) as { kld_mean: number; kv_bits_per_value: number };
  const schedule = held(["--kv-schedule", out]);
  const k8v4 = held(["--kv", "K8V4"]);
  assert.ok(schedule.kv_bits_per_value <= k8v4.kv_bits_per_value, `${schedule.kv_bits_per_value} bits vs K8V4's ${k8v4.kv_bits_per_value}`);
  assert.ok(schedule.kld_mean < k8v4.kld_mean / 2, `held-out KLD: schedule ${schedule.kld_mean} vs K8V4 ${k8v4.kld_mean}`);
  assert.ok(schedule.kld_mean < 3 * tuned.kld_predicted && schedule.kld_mean > tuned.kld_predicted / 3, `held-out ${schedule.kld_mean} vs predicted ${tuned.kld_predicted}`);
});
