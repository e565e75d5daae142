/**
 * Reports (src/report): the terminal table, CSV quoting, JSON/CSV written atomically, the plots' content (titles,
 * Pareto marking, keys-vs-values grouping) and that their text really renders in the PNGs (DejaVu Sans found).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Resvg } from "@resvg/resvg-js";
import type { CompareResult, CompareRow } from "../../src/eval/compare.js";
import type { KvFormatName } from "../../src/formats/types.js";
import { compareJson, toCsv, writeResults } from "../../src/report/results.js";
import { compareTable, formatBytesShort, formatTable } from "../../src/report/table.js";
import { comparePlots, renderSvg, RESVG_OPTIONS, sensitivityPoints, svgToPng, writeComparePlots } from "../../src/report/plots.js";
import { writeFileAtomic } from "../../src/report/atomic.js";

const CONTEXTS = [128, 2048, 4096, 8192, 512];

function row(config: string, k: KvFormatName, v: KvFormatName, bytes: number, kld: number, group: CompareRow["group"] = "config"): CompareRow {
  return {
    config, k, v, group, kvsplitOnly: false,
    kvBytesPerToken: bytes,
    kvBytes: 512 * bytes,
    kvBitsPerValue: (8 * bytes) / (4 * 128 * 2),
    kvBytesAt: new Map(CONTEXTS.map((n) => [n, n * bytes])),
    savedVsF16Pct: 100 * (1 - bytes / 512),
    ppTps: 1000, tgTps: 200,
    ppl: 5.3, pplStderr: 0.15, deltaPplPct: 1e4 * kld, deltaPplPctStderr: 0.01,
    kldMean: kld, kldMeanStderr: kld / 10, kldMedian: kld / 2, kldP99: kld * 10, top1Agree: 1 - 10 * kld,
    evalSeconds: 1,
  };
}

function fakeResult(): CompareResult {
  return {
    modelPath: "/models/fake.gguf",
    config: { architecture: "llama", dim: 256, nLayers: 4, nHeads: 4, nKvHeads: 2, headDim: 64, kvDim: 128, ffnDim: 688, nVocab: 512, contextLength: 512, normEps: 1e-5, ropeBase: 1e4, ropeDim: 64, ropeKind: "norm", ropeFreqScale: 1, ropeAttnFactor: 1 },
    ctx: 512, nChunks: 16, nScored: 4080, textSha256: "f".repeat(64), rotation: true, trainedContext: 512,
    memoryContexts: CONTEXTS,
    baseline: { kv: { k: "f32", v: "f32" }, ppl: 5.27, pplStderr: 0.15, ppTps: 900, tgTps: 180, evalSeconds: 10 },
    speed: { promptTokens: 128, genTokens: 32, reps: 3 },
    rows: [
      row("F16", "f16", "f16", 2048, 5e-8),
      row("K8V8", "q8_0", "q8_0", 1088, 3e-5),
      row("K8V4", "q8_0", "q4_0", 832, 2e-3),
      row("K4V8", "q4_0", "q8_0", 832, 5e-3),
      row("K4V4", "q4_0", "q4_0", 576, 7e-3),
      row("K4V16", "q4_0", "f16", 1312, 4.5e-3, "sensitivity"),
      row("K16V4", "f16", "q4_0", 1312, 2e-3, "sensitivity"),
    ],
  };
}

test("with a per-layer schedule among the rows the quality plot draws two Pareto fronts: llama.cpp's and kvsplit's", async () => {
  const result = fakeResult();
  // at K8V4's bytes with a quarter of its KLD: it moves kvsplit's front, not llama.cpp's
  result.rows.push({ ...row("schedule:s.json", "q8_0", "q4_0", 832, 5e-4), k: "mixed", v: "mixed", kvsplitOnly: true });
  const spec = comparePlots(result)[1].spec as { layer: { data?: { values: { config: string }[] }; mark: { color?: string } }[] };
  const fronts = spec.layer.filter((l) => l.mark.color !== undefined).map((l) => l.data!.values.map((v) => v.config));
  assert.deepEqual(fronts, [["K4V4", "K8V4", "K8V8", "F16"], ["K4V4", "schedule:s.json", "K8V8", "F16"]]);
  const svg = await renderSvg(comparePlots(result)[1].spec);
  assert.ok(svg.includes("grey dotted: llama.cpp's (one K/V pair for all layers)") && svg.includes("kvsplit's own (format, schedule, window)"));
  const plain = comparePlots(fakeResult())[1].spec as { layer: { mark: { color?: string } }[] };
  assert.equal(plain.layer.filter((l) => l.mark.color !== undefined).length, 1, "one front without schedules");
});

test("formatTable pads columns; formatBytesShort picks binary units", () => {
  const t = formatTable([{ title: "a", align: "left" }, { title: "num", align: "right" }], [["xyz", "1"], ["b", "1234"]]);
  assert.equal(t, ["a     num", "---  ----", "xyz     1", "b    1234"].join("\n"));
  assert.equal(formatBytesShort(512), "512 B");
  assert.equal(formatBytesShort(98304), "96.0 KiB");
  assert.equal(formatBytesShort(176 * 2 ** 20), "176 MiB");
  assert.equal(formatBytesShort(1.5 * 2 ** 20), "1.50 MiB");
});

test("compareTable: the baseline first, every config, the Pareto front starred, sensitivity rows marked", () => {
  const text = compareTable(fakeResult());
  const lines = text.split("\n");
  assert.match(lines[0], /^config\s+K\s+V\s+B\/token\s+@128\s+@2048\s+@4096\s+@8192\s+@512 \(trained\)/);
  assert.match(lines[2], /^F32 \(base\)\s+f32\s+f32/);
  assert.match(text, /^K8V4 \*\s/m, "K8V4 is on the front (832 B, 2e-3)");
  assert.match(text, /^K4V8\s+q4_0/m, "K4V8 is dominated by K8V4");
  assert.match(text, /^K16V4 \(s\)\s/m, "K16V4 is dominated by K8V4 (fewer bytes, same loss)");
  assert.equal(lines.length, 2 + 1 + 7);
});

test("CSV quotes what needs quoting; results.json and results.csv are written atomically with the contract's fields", () => {
  assert.equal(toCsv([{ a: 1, b: 'x,"y"' }, { a: null, b: "z" }]), 'a,b\n1,"x,""y"""\n,z\n');
  const dir = mkdtempSync(path.join(os.tmpdir(), "kvsplit-report-"));
  try {
    const json = compareJson(fakeResult(), { embedded: false, notes: ["a note"], textLabel: "t.txt" });
    const written = writeResults(path.join(dir, "out"), json);
    const back = JSON.parse(readFileSync(written.json, "utf8")) as { model: string; rows: Record<string, unknown>[] };
    assert.equal(back.model, "/models/fake.gguf");
    assert.equal(back.rows.length, 7);
    assert.deepEqual(Object.keys(back.rows[0]).slice(0, 13), [
      "config", "k", "v", "group", "kv_bytes_per_token", "kv_bytes_128", "kv_bytes_2048", "kv_bytes_4096", "kv_bytes_8192", "kv_bytes_trained_ctx",
      "kv_bytes", "kv_bits_per_value", "saved_vs_f16_pct",
    ]);
    assert.equal(back.rows[4].kv_bytes_8192, 8192 * 576);
    const csv = readFileSync(written.csv, "utf8").trim().split("\n");
    assert.equal(csv.length, 8);
    assert.deepEqual(readdirSync(path.join(dir, "out")).sort(), ["results.csv", "results.json"], "no temporary files left");
    writeFileAtomic(written.json, "replaced");
    assert.equal(readFileSync(written.json, "utf8"), "replaced");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("sensitivityPoints sorts rows into keys only, values only and both", () => {
  const points = sensitivityPoints(fakeResult().rows);
  const by = (config: string) => points.find((p) => p.config === config);
  assert.equal(by("K4V16")?.side, "keys only");
  assert.equal(by("K16V4")?.side, "values only");
  assert.equal(by("K4V4")?.side, "both");
  assert.equal(by("K4V4")?.bits, 4.5);
  assert.equal(by("K8V4"), undefined, "mixed widths are not a sensitivity point");
  assert.equal(by("F16"), undefined);
});

test("the plots render to SVG with their titles and data, and their text renders in the PNG", async () => {
  const result = fakeResult();
  const plots = comparePlots(result);
  assert.deepEqual(plots.map((p) => p.name), ["kv-memory", "quality-vs-memory", "kv-sensitivity", "speed"]);
  const quality = await renderSvg(plots[1].spec);
  assert.ok(quality.includes("Quality loss vs KV memory (Pareto front marked)"));
  assert.ok(quality.includes("on the Pareto front") && quality.includes("dominated"));
  for (const name of ["F16", "K8V8", "K8V4", "K4V8", "K4V4"]) assert.ok(quality.includes(`>${name}<`), `point label ${name}`);
  // K8V4 and K4V8 have the same bytes per token: their memory lines coincide, so they differ in dash and point shape
  const memory = await renderSvg(plots[0].spec);
  const enc = (plots[0].spec as { encoding: Record<string, { scale?: { domain: string[]; range: unknown[] } }> }).encoding;
  for (const channel of ["strokeDash", "shape"]) {
    const { domain, range } = enc[channel].scale!;
    const of = (config: string) => JSON.stringify(range[domain.indexOf(config)]);
    assert.notEqual(of("K8V4"), of("K4V8"), `${channel}: K8V4 and K4V8 are told apart`);
    assert.equal(of("F16"), of("K8V8"), `${channel}: configs of different bytes keep the first style`);
  }
  assert.ok(memory.includes("stroke-dasharray"), "the dashed line is drawn");
  assert.ok(memory.includes("K8V4 = K4V8 (same bytes: one dashed line)"), "the subtitle names the shared line");
  const sens = await renderSvg(plots[2].spec);
  for (const label of ["keys only", "values only", "both", "q4_0 (4.5 bits)"]) assert.ok(sens.includes(label), label);

  // Text renders: the same SVG with and without its text differ in dark pixels by a lot.
  const darkPixels = (svg: string): number => {
    const px = new Resvg(svg, RESVG_OPTIONS).render().pixels;
    let n = 0;
    for (let i = 0; i < px.length; i += 4) if (px[i] < 100 && px[i + 1] < 100 && px[i + 2] < 100) n++;
    return n;
  };
  const withoutText = quality.replace(/<text[^>]*>[^<]*<\/text>/g, "");
  assert.ok(darkPixels(quality) > darkPixels(withoutText) + 2000, "text drawn with a font that was found");
  const png = svgToPng(quality);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

  const dir = mkdtempSync(path.join(os.tmpdir(), "kvsplit-plots-"));
  try {
    const written = await writeComparePlots(result, dir);
    assert.equal(written.length, 4);
    assert.equal(readdirSync(dir).length, 8, "an SVG and a PNG per plot, no temporary files");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
