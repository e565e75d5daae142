/**
 * The exact recent window (KvCacheOptions.window, SessionOptions.kvWindow, `--kv-window N`, `K4V4+w16`): each query
 * reads its last N positions from f16 rows and the earlier ones from the packed formats; exact sinks (`+s4`,
 * `--kv-sinks 4`): positions [0, S) from f16 rows for every query.
 *   1. the kernel against the scalar reference (attentionFromStored with the window) for every position of a cache,
 *      across the window's edge and the ring's wrap, for several formats, with and without rotation;
 *   2. a window covering every position gives an f16 cache's bits (rotated like the quantized sides: rule "all");
 *      an f16 cache with a window gives the bits of one without;
 *   3. the same logits for any batch split and thread count; bytes() counts the window; misuse is refused clearly;
 *   4. the commands: `+wN` configs and `--kv-window`, bench --vs llama.cpp refused, plan counts the window.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { getKvFormat, rowBytes } from "../../src/formats/table.js";
import type { KvFormatName } from "../../src/formats/types.js";
import { KvCache, kvExactBytes, type KvCacheOptions } from "../../src/kv/cache.js";
import { parseKvConfig, parseKvConfigList, resolveKvFlags } from "../../src/kv/shorthand.js";
import { loadModel } from "../../src/model/model.js";
import { defaultRuntime } from "../../src/runtime/wasm.js";
import { attentionFromStored, errorBeyondBound, gaussianRow, maxRelativeError, seededRandom, storedAttention, storedAttentionError, type AttentionShape } from "../helpers/kv-reference.js";
import { runCli } from "../helpers/cli.js";
import { useModelDir } from "../helpers/model-dir.js";

const rt = defaultRuntime();
const md = useModelDir("window", { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 96 }, 9);

interface Filled {
  cache: KvCache;
  k: Float32Array[];
  v: Float32Array[];
}

/** One-layer cache with `nPos` random positions appended in batches of `batch`. */
function filled(opts: KvCacheOptions, nPos: number, batch: number, seed: number): Filled {
  const rand = seededRandom(seed);
  const kvDim = opts.nKvHeads * opts.headDim;
  const cache = new KvCache(rt, opts);
  const k: Float32Array[] = [];
  const v: Float32Array[] = [];
  const kPtr = rt.alloc(batch * kvDim * 4);
  const vPtr = rt.alloc(batch * kvDim * 4);
  for (let p0 = 0; p0 < nPos; p0 += batch) {
    const n = Math.min(batch, nPos - p0);
    for (let i = 0; i < n; i++) {
      k.push(gaussianRow(rand, kvDim));
      v.push(gaussianRow(rand, kvDim));
      rt.f32(kPtr + i * kvDim * 4, kvDim).set(k[p0 + i]);
      rt.f32(vPtr + i * kvDim * 4, kvDim).set(v[p0 + i]);
    }
    cache.appendBatch(0, p0, n, kPtr, vPtr);
  }
  rt.free(kPtr);
  rt.free(vPtr);
  return { cache, k, v };
}

/** Attention of one query at the cache's last position (nPos), right after the append of that position. */
function attendLast(cache: KvCache, nPos: number, q: Float32Array): Float32Array {
  const n = cache.nHeads * cache.headDim;
  const qPtr = rt.alloc(n * 4);
  const outPtr = rt.alloc(n * 4);
  rt.f32(qPtr, n).set(q);
  cache.attend(0, nPos, qPtr, outPtr);
  const out = rt.f32(outPtr, n).slice();
  rt.free(qPtr);
  rt.free(outPtr);
  return out;
}

function layers(k: KvFormatName, v: KvFormatName) {
  return [{ k: getKvFormat(k), v: getKvFormat(v) }];
}

/**
 * Append `nPos` random positions one at a time to a one-layer cache of `opts`; after each, the kernel's attention of a
 * random query must equal attentionFromStored with the cache's exact rows (within the integer sums' bound for codebook
 * values: storedAttention); `also` gets each step, with the plain error against that reference, to check more.
 */
function checkEveryPosition(opts: KvCacheOptions, nPos: number, seed: number, also?: (cache: KvCache, p: number, q: Float32Array, out: Float32Array, err: number) => void): void {
  const cache = new KvCache(rt, opts);
  const rand = seededRandom(seed);
  const kvDim = opts.nKvHeads * opts.headDim;
  const k: Float32Array[] = [];
  const v: Float32Array[] = [];
  const ptr = rt.alloc(kvDim * 8);
  const label = `${opts.layers[0].k.name}/${opts.layers[0].v.name} window ${opts.window ?? 0} sinks ${opts.sinks ?? 0} (${opts.exactFormat ?? "f16"}) rotation ${opts.rotation}`;
  try {
    for (let p = 0; p < nPos; p++) {
      k.push(gaussianRow(rand, kvDim));
      v.push(gaussianRow(rand, kvDim));
      rt.f32(ptr, kvDim).set(k[p]);
      rt.f32(ptr + kvDim * 4, kvDim).set(v[p]);
      cache.append(0, p, ptr, ptr + kvDim * 4);
      const q = gaussianRow(rand, opts.nHeads * opts.headDim);
      const out = attendLast(cache, p + 1, q);
      const ref = storedAttention(cache, 0, p + 1, q, { k, v, window: opts.window ?? 0, sinks: opts.sinks, format: opts.exactFormat });
      const err = errorBeyondBound(out, ref);
      assert.ok(err < 2e-5, `${label} position ${p}: ${err}`);
      also?.(cache, p, q, out, maxRelativeError(out, ref.out));
    }
  } finally {
    rt.free(ptr);
    cache.dispose();
  }
}

test("the window's attention equals the scalar reference at every position, across the window's edge and the ring's wrap", () => {
  const shape: AttentionShape = { nHeads: 4, nKvHeads: 2, headDim: 64 };
  const cases: Array<[KvFormatName, KvFormatName, boolean, number]> = [["q4_0", "q4_0", true, 5], ["q8_0", "q4_0", true, 8], ["iq4_nl", "q5_1", false, 3], ["q4_1", "f16", true, 6], ["iq3_nl", "iq2_nl", true, 7], ["iq2_nl", "iq3_nl", false, 4]];
  for (const [kf, vf, rotation, window] of cases) {
    const opts: KvCacheOptions = { ...shape, nLayers: 1, contextSize: 24, layers: layers(kf, vf), rotation, window, maxTokens: 1 };
    checkEveryPosition(opts, 20, 41, (cache, p, q, out, err) => {
      // and the window really is used: the reference without it is further away
      if (p >= window) assert.ok(maxRelativeError(out, attentionFromStored(cache, 0, p + 1, q)) > 10 * err, `${kf}/${vf} position ${p}: the window changes the result`);
    });
  }
});

test("exact sinks, alone and with a window, equal the scalar reference at every position", () => {
  const shape: AttentionShape = { nHeads: 4, nKvHeads: 2, headDim: 64 };
  for (const [sinks, window] of [[3, 0], [2, 4], [6, 3]]) {
    const opts: KvCacheOptions = { ...shape, nLayers: 1, contextSize: 24, layers: layers("q4_0", "q4_0"), rotation: true, window, sinks, maxTokens: 1 };
    const cache = new KvCache(rt, opts);
    assert.equal(cache.bytes(), 24 * 2 * 72 + kvExactBytes(sinks + window, 1, 128));
    cache.dispose();
    checkEveryPosition(opts, 16, 51);
  }
});

test("exact rows in q8_0 (window and sinks) equal the scalar reference at every position; bytes count q8_0 rows", () => {
  const shape: AttentionShape = { nHeads: 4, nKvHeads: 2, headDim: 64 };
  const cases: Array<[KvFormatName, KvFormatName, boolean, number, number]> = [
    ["q4_0", "q4_0", true, 5, 0], ["iq2_e8", "iq2_e8", true, 7, 2], ["q4_1", "q5_1", false, 4, 3], ["iq3_e8", "f16", true, 6, 0], ["f16", "q8_0", false, 3, 1],
  ];
  for (const [kf, vf, rotation, window, sinks] of cases) {
    const opts: KvCacheOptions = { ...shape, nLayers: 1, contextSize: 24, layers: layers(kf, vf), rotation, window, sinks, maxTokens: 1, exactFormat: "q8_0" };
    const cache = new KvCache(rt, opts);
    const packed = 24 * (rowBytes(getKvFormat(kf), 128) + rowBytes(getKvFormat(vf), 128));
    assert.equal(cache.bytes(), packed + 2 * (window + sinks) * rowBytes(getKvFormat("q8_0"), 128));
    assert.equal(kvExactBytes(window + sinks, 1, 128, "q8_0"), 2 * (window + sinks) * 4 * 34);
    cache.dispose();
    checkEveryPosition(opts, 20, 43, (c, p, q, out, err) => {
      // the q8_0 rows are not the f16 ones: the f16 reference is further away once the window holds positions
      const f16Err = maxRelativeError(out, attentionFromStored(c, 0, p + 1, q, { k: [], v: [], window: 0 }));
      if (p >= window + sinks) assert.ok(f16Err > 10 * err, `${kf}/${vf} position ${p}: the q8_0 window changes the result (${f16Err} vs ${err})`);
    });
  }
  // batches and threads: the same bits as one position at a time
  const opts: KvCacheOptions = { ...shape, nLayers: 1, contextSize: 40, layers: layers("iq2_e8", "iq3_e8"), rotation: true, window: 9, sinks: 2, exactFormat: "q8_0" };
  const one = filled({ ...opts, maxTokens: 1 }, 33, 1, 61);
  const batched = filled({ ...opts, maxTokens: 7 }, 33, 7, 61);
  const q = gaussianRow(seededRandom(3), 4 * 64);
  assert.deepEqual(attendLast(batched.cache, 33, q), attendLast(one.cache, 33, q));
  one.cache.dispose();
  batched.cache.dispose();
});

test("exact rows in q8_0 are refused where they cannot be: head_dim not a multiple of 32, keys per channel, an unknown format", () => {
  const base = { nLayers: 1, contextSize: 40, rotation: false, window: 4, exactFormat: "q8_0" as const };
  assert.throws(() => new KvCache(rt, { ...base, nHeads: 4, nKvHeads: 2, headDim: 16, layers: layers("f16", "f16") }), /exact rows in q8_0 need head_dim a multiple of 32, not 16/);
  assert.throws(
    () => new KvCache(rt, { ...base, nHeads: 4, nKvHeads: 2, headDim: 64, window: 32, layers: [{ k: getKvFormat("q4_0"), v: getKvFormat("q4_0"), kLayout: "channel" }] }),
    /keys per channel are quantized from the window's exact rows, which must be f16, not q8_0/,
  );
  assert.throws(() => new KvCache(rt, { ...base, nHeads: 4, nKvHeads: 2, headDim: 64, layers: layers("f16", "f16"), exactFormat: "q4_0" as never }), /exactFormat must be one of f16, q8_0, got 'q4_0'/);
});

test("a window over every position gives an f16 cache's bits; an f16 cache with a window gives the bits of one without", () => {
  const shape: AttentionShape = { nHeads: 4, nKvHeads: 2, headDim: 64 };
  const base = { ...shape, nLayers: 1, contextSize: 16 };
  const q = gaussianRow(seededRandom(7), shape.nHeads * shape.headDim);
  // rotated f16 rows either way: the quantized pair's rotation, or rule "all" on an f16 pair
  const windowed = filled({ ...base, layers: layers("q4_0", "q4_0"), rotation: true, window: 16, maxTokens: 4 }, 13, 4, 3);
  const f16 = filled({ ...base, layers: layers("f16", "f16"), rotation: true, rotationRule: "all", window: 0 }, 13, 4, 3);
  const plain = filled({ ...base, layers: layers("f16", "f16"), rotation: true }, 13, 4, 3);
  const plainWindowed = filled({ ...base, layers: layers("f16", "f16"), rotation: true, window: 5, maxTokens: 4 }, 13, 4, 3);
  try {
    assert.deepEqual(windowed.cache.layout(0).rotation, f16.cache.layout(0).rotation);
    assert.deepEqual(Array.from(attendLast(windowed.cache, 13, q)), Array.from(attendLast(f16.cache, 13, q)));
    assert.deepEqual(Array.from(attendLast(plainWindowed.cache, 13, q)), Array.from(attendLast(plain.cache, 13, q)));
    assert.equal(windowed.cache.bytes(), 16 * 2 * 72 + kvExactBytes(16, 1, 128), "packed rows for every position plus the f16 window");
    assert.equal(kvExactBytes(16, 1, 128), 2 * 16 * 128 * 2);
  } finally {
    for (const c of [windowed, f16, plain, plainWindowed]) c.cache.dispose();
  }
});

test("any batch split and thread count give the same logits with a window", () => {
  const tokens = Array.from({ length: 70 }, (_, i) => (i * 37 + 11) % 320);
  const logits = (threads: number, batch: number) => {
    const model = loadModel(md.modelPath, { threads });
    try {
      const s = model.createSession({ contextSize: 96, kv: { k: "q4_0", v: "q8_0" }, kvWindow: 12 });
      const rows: number[] = [];
      for (let i = 0; i < tokens.length; i += batch) rows.push(...s.evalAll(tokens.slice(i, i + batch)));
      return rows;
    } finally {
      model.dispose();
    }
  };
  const one = logits(1, 64);
  assert.deepEqual(logits(1, 1), one, "token by token");
  assert.deepEqual(logits(1, 7), one, "batches of 7");
  assert.deepEqual(logits(2, 64), one, "two threads");
  const model = loadModel(md.modelPath, { threads: 1 });
  try {
    const plain = model.createSession({ contextSize: 96, kv: { k: "q4_0", v: "q8_0" } }).evalAll(tokens);
    assert.notDeepEqual(Array.from(plain), one, "the window changes the logits");
    const s = model.createSession({ contextSize: 96, kv: { k: "q4_0", v: "q8_0" }, kvWindow: 12 });
    assert.equal(s.kvWindow, 12);
    assert.equal(s.kvBytes, model.createSession({ contextSize: 96, kv: { k: "q4_0", v: "q8_0" } }).kvBytes + kvExactBytes(12, 2, 64));
  } finally {
    model.dispose();
  }
});

test("misuse is refused: heads splitting blocks, attention before the append, a gap in the positions, bad windows", () => {
  const opts: KvCacheOptions = { nHeads: 4, nKvHeads: 2, headDim: 64, nLayers: 1, contextSize: 16, layers: layers("q4_0", "q4_0"), rotation: true, window: 4, maxTokens: 4 };
  assert.throws(() => new KvCache(rt, { ...opts, headDim: 8 }), /an exact window needs every kv head on whole K and V blocks \(head_dim 8/);
  assert.throws(() => new KvCache(rt, { ...opts, window: 17 }), /window must be an integer in 0 \.\. contextSize \(16\), got 17/);
  const { cache } = filled(opts, 8, 4, 1);
  const q = new Float32Array(256);
  try {
    assert.throws(() => attendLast(cache, 9, q), /with an exact window, attention for positions 8 \.\. 8 must follow the append of those positions/);
    const ptr = rt.alloc(128 * 8);
    assert.throws(() => cache.appendBatch(0, 12, 1, ptr, ptr + 512), /positions 8 \.\. 11 of the exact window are not in its f16 rows \(it holds 4 \.\. 7\)/);
    rt.free(ptr);
  } finally {
    cache.dispose();
  }
  assert.equal(parseKvConfig("K4V4+w16").name, "K4V4+w16");
  assert.deepEqual(parseKvConfigList("F16,windows").map((c) => c.name), ["F16", "K4V4+w4", "K4V4+w16", "iq4_nl/iq4_nl+w16", "K5V5+w16", "K8V4+w16"]);
  assert.equal(parseKvConfig("q8_0/q4_0 + w8").window, 8);
  assert.throws(() => parseKvConfig("K4V4+w0"), /'\+w0': window must be at least 1/);
  assert.throws(() => parseKvConfig("K4V4+w4+w8"), /window given twice/);
  const both = parseKvConfig("q8_0/q4_0+w16+s4");
  assert.deepEqual([both.name, both.sinks, both.window], ["K8V4+s4+w16", 4, 16]);
  assert.equal(resolveKvFlags({ kv: "K4V4", sinks: 4, window: 8 }).name, "K4V4+s4+w8");
  assert.equal(resolveKvFlags({ kv: "K8V4", window: 16 }).name, "K8V4+w16");
  assert.throws(() => resolveKvFlags({ kv: "K8V4+w8", window: 16 }), /'--kv-window 16' conflicts with 'the window \+w8 of K8V4\+w8'/);
});

test("commands: +wN and --kv-window agree, plan counts the window, bench --vs llama.cpp refuses it", () => {
  const run = (...args: string[]) => runCli(md.dir, args);
  const a = run("perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--kv", "K4V4+w8", "--json");
  const b = run("perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--kv", "K4V4", "--kv-window", "8", "--json");
  assert.equal(a.code, 0, a.stderr);
  const ja = JSON.parse(a.stdout) as { ppl: number; kv_bytes: number; kv_bits_per_value: number; kv: { window: number } };
  const jb = JSON.parse(b.stdout) as { ppl: number; kv_bytes: number };
  assert.equal(ja.ppl, jb.ppl);
  assert.equal(ja.kv.window, 8);
  assert.equal(ja.kv_bytes, 2 * 32 * (36 + 36) + kvExactBytes(8, 2, 64));
  assert.equal(ja.kv_bits_per_value, (8 * ja.kv_bytes) / (32 * 2 * 64 * 2));
  const plan = JSON.parse(run("plan", "-m", md.modelPath, "-c", "64", "--configs", "K4V4,K4V4+w8", "--json").stdout) as { rows: { config: string; bytes: number }[] };
  assert.deepEqual(plan.rows.map((r) => [r.config, r.bytes]), [["K4V4", 64 * 2 * 72], ["K4V4+w8", 64 * 2 * 72 + kvExactBytes(8, 2, 64)]]);
  const bench = run("bench", "-m", md.modelPath, "--configs", "K4V4+w8", "--vs", "llama.cpp");
  assert.equal(bench.code, 2);
  assert.match(bench.stderr, /K4V4\+w8: llama\.cpp keeps no exact window or sinks/);
  // +q8: the window's rows in q8_0, counted as such by perplexity and plan, and a different result from f16 rows
  const q = run("perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--kv", "K4V4+w8+q8", "--json");
  assert.equal(q.code, 0, q.stderr);
  const jq = JSON.parse(q.stdout) as { ppl: number; kv_bytes: number; kv: { window: number; exact_format: string } };
  assert.deepEqual([jq.kv.window, jq.kv.exact_format], [8, "q8_0"]);
  assert.equal(jq.kv_bytes, 2 * 32 * (36 + 36) + kvExactBytes(8, 2, 64, "q8_0"));
  assert.notEqual(jq.ppl, ja.ppl);
  const planQ = JSON.parse(run("plan", "-m", md.modelPath, "-c", "64", "--configs", "K4V4+w8+q8", "--json").stdout) as { rows: { config: string; bytes: number }[] };
  assert.deepEqual(planQ.rows.map((r) => [r.config, r.bytes]), [["K4V4+w8+q8", 64 * 2 * 72 + kvExactBytes(8, 2, 64, "q8_0")]]);
  for (const [spec, why] of [["K4V4+q8", /'\+q8' \(exact rows in q8_0\) needs a window \(\+wN\) or sinks \(\+sN\)/], ["K4V4+c+q8", /it cannot take '\+q8'/]] as const) {
    const r = run("perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--kv", spec);
    assert.equal(r.code, 2, `${spec}: ${r.stderr}`);
    assert.match(r.stderr, why);
  }
});

test("per-layer windows and sinks (a schedule's): each layer reads its own exact rows; bytes() counts each layer's", () => {
  const shape: AttentionShape = { nHeads: 4, nKvHeads: 2, headDim: 64 };
  const kvDim = shape.nKvHeads * shape.headDim;
  const perLayer = [
    { k: getKvFormat("q4_0"), v: getKvFormat("q4_0"), window: 5 },
    { k: getKvFormat("iq3_nl"), v: getKvFormat("iq2_nl"), window: 0, sinks: 3 },
    { k: getKvFormat("q8_0"), v: getKvFormat("q4_0") }, // the cache-wide window 8
  ];
  const exactOf = [{ window: 5, sinks: 0 }, { window: 0, sinks: 3 }, { window: 8, sinks: 0 }];
  const cache = new KvCache(rt, { ...shape, nLayers: 3, contextSize: 40, layers: perLayer, rotation: true, window: 8, maxTokens: 6 });
  const rand = seededRandom(77);
  const k: Float32Array[][] = [[], [], []]; // (layer, position) kvDim rows
  const v: Float32Array[][] = [[], [], []];
  const batch = 6;
  const kPtr = rt.alloc(batch * kvDim * 4);
  const vPtr = rt.alloc(batch * kvDim * 4);
  const qPtr = rt.alloc(batch * shape.nHeads * shape.headDim * 4);
  const outPtr = rt.alloc(batch * shape.nHeads * shape.headDim * 4);
  try {
    for (let p0 = 0; p0 < 30; p0 += batch) {
      for (let layer = 0; layer < 3; layer++) {
        for (let i = 0; i < batch; i++) {
          k[layer].push(gaussianRow(rand, kvDim));
          v[layer].push(gaussianRow(rand, kvDim));
          rt.f32(kPtr + i * kvDim * 4, kvDim).set(k[layer][p0 + i]);
          rt.f32(vPtr + i * kvDim * 4, kvDim).set(v[layer][p0 + i]);
        }
        cache.appendBatch(layer, p0, batch, kPtr, vPtr);
        const qs = Array.from({ length: batch }, () => gaussianRow(rand, shape.nHeads * shape.headDim));
        qs.forEach((q, i) => rt.f32(qPtr + i * q.length * 4, q.length).set(q));
        cache.attendBatch(layer, p0, batch, qPtr, outPtr);
        for (let i = 0; i < batch; i++) {
          const n = shape.nHeads * shape.headDim;
          const out = rt.f32(outPtr + i * n * 4, n).slice();
          const err = storedAttentionError(out, cache, layer, p0 + i + 1, qs[i], { k: k[layer], v: v[layer], ...exactOf[layer] });
          assert.ok(err < 2e-5, `layer ${layer} position ${p0 + i}: ${err}`);
        }
      }
    }
    const packed = perLayer.reduce((sum, l) => sum + 40 * (rowBytes(l.k, kvDim) + rowBytes(l.v, kvDim)), 0);
    assert.equal(cache.bytes(), packed + kvExactBytes(5, 1, kvDim) + kvExactBytes(3, 1, kvDim) + kvExactBytes(8, 1, kvDim));
    assert.deepEqual(cache.windows, [5, 0, 8]);
    assert.deepEqual(cache.sinkCounts, [0, 3, 0]);
  } finally {
    for (const p of [kPtr, vPtr, qPtr, outPtr]) rt.free(p);
    cache.dispose();
  }
});

test("a schedule's per-layer window and sinks reach the session (perplexity counts them); bad values are refused", () => {
  const run = (...args: string[]) => runCli(md.dir, args);
  const schedule = path.join(md.dir, "per-layer.json");
  writeFileSync(schedule, JSON.stringify({ window: 8, layers: [{ k: "iq3_nl", v: "iq2_nl", window: 16, sinks: 2 }, { k: "q4_0", v: "q4_0" }] }));
  const r = run("perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--kv-schedule", schedule, "--json");
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { kv_bytes: number; kv: { window: number; layers: unknown[] } };
  assert.deepEqual(j.kv.layers, [{ k: "iq3_nl", v: "iq2_nl", window: 16, sinks: 2 }, { k: "q4_0", v: "q4_0" }]);
  assert.equal(j.kv.window, 8);
  // packed rows of both layers + layer 0's 16 + 2 exact rows + layer 1's 8 (the schedule's window); kvDim 64
  assert.equal(j.kv_bytes, 32 * (28 + 20) + 32 * 2 * 36 + kvExactBytes(18, 1, 64) + kvExactBytes(8, 1, 64));
  // the same layer-1 window spelled per layer gives the same numbers
  writeFileSync(schedule, JSON.stringify({ layers: [{ k: "iq3_nl", v: "iq2_nl", window: 16, sinks: 2 }, { k: "q4_0", v: "q4_0", window: 8 }] }));
  const same = JSON.parse(run("perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--kv-schedule", schedule, "--json").stdout) as { ppl: number; kv_bytes: number };
  assert.equal(same.kv_bytes, j.kv_bytes);
  assert.equal(same.ppl, (JSON.parse(r.stdout) as { ppl: number }).ppl);
  writeFileSync(schedule, JSON.stringify({ layers: [{ k: "q4_0", v: "q4_0", window: -1 }, { k: "q4_0", v: "q4_0" }] }));
  const bad = run("perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--kv-schedule", schedule);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /per-layer\.json: layer 0 "window" must be a whole number of positions \(0 or more\), got -1/);
});
