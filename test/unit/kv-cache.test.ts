/**
 * KvCache as the model uses it: exact byte accounting, per-layer formats, rotation where llama.cpp rotates,
 * length bookkeeping and errors that name the offending value.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getKvFormat } from "../../src/formats/table.js";
import type { KvFormatName } from "../../src/formats/types.js";
import { KvCache, kvBytesPerToken, kvRowBytes, type KvCacheOptions } from "../../src/kv/cache.js";
import { rotateRowReference } from "../../src/kv/rotation.js";
import { defaultRuntime } from "../../src/runtime/wasm.js";
import {
  attentionF64,
  attentionFromStored,
  gaussianRow,
  maxRelativeError,
  rmsRelativeError,
  seededRandom,
  type AttentionShape,
} from "../helpers/kv-reference.js";

const rt = defaultRuntime();
const MiB = 1024 * 1024;

function pairs(spec: Array<[KvFormatName, KvFormatName]>) {
  return spec.map(([k, v]) => ({ k: getKvFormat(k), v: getKvFormat(v) }));
}

test("bytes(): TinyLlama shape at 8192 tokens gives F16 176.00, K8V8 93.50, K8V4 71.50, K4V4 49.50 MiB", () => {
  const expected: Array<[KvFormatName, KvFormatName, number]> = [
    ["f16", "f16", 176.0],
    ["q8_0", "q8_0", 93.5],
    ["q8_0", "q4_0", 71.5],
    ["q4_0", "q4_0", 49.5],
  ];
  for (const [k, v, mib] of expected) {
    const layers = pairs(Array.from({ length: 22 }, () => [k, v] as [KvFormatName, KvFormatName]));
    const cache = new KvCache(rt, { nLayers: 22, nHeads: 32, nKvHeads: 4, headDim: 64, contextSize: 8192, layers, rotation: true });
    try {
      assert.equal(cache.bytes() / MiB, mib, `${k}/${v}`);
      assert.equal(cache.bytes(), 8192 * kvBytesPerToken(layers, 256));
      // the format arithmetic, spelled out: 22 layers × 8192 × (256/32 blocks × bytes per block)
      const perRow = (f: KvFormatName) => (256 / getKvFormat(f).blockSize) * getKvFormat(f).bytesPerBlock;
      assert.equal(cache.bytes(), 22 * 8192 * (perRow(k) + perRow(v)));
    } finally {
      cache.dispose();
    }
  }
});

test("bytes() counts the padding of rows that are not whole blocks, and mixed per-layer formats", () => {
  // kvDim 40: q8_0 pads to 64 values (2 blocks, 68 B), q4_1 to 64 (40 B), f16 needs none (80 B)
  assert.equal(kvRowBytes(getKvFormat("q8_0"), 40), 68);
  assert.equal(kvRowBytes(getKvFormat("q4_1"), 40), 40);
  assert.equal(kvRowBytes(getKvFormat("f16"), 40), 80);
  const layers = pairs([["q8_0", "f16"], ["q4_1", "q8_0"]]);
  const cache = new KvCache(rt, { nLayers: 2, nHeads: 10, nKvHeads: 5, headDim: 8, contextSize: 100, layers, rotation: false });
  assert.equal(cache.bytes(), 100 * (68 + 80 + 40 + 68));
  cache.dispose();
});

interface Filled {
  cache: KvCache;
  k: Float32Array[][]; // (layer, nPos, kvDim)
  v: Float32Array[][];
}

function fillCache(opts: KvCacheOptions, nPos: number, seed: number, rows?: (rand: () => number, kvDim: number) => Float32Array): Filled {
  const rand = seededRandom(seed);
  const kvDim = opts.nKvHeads * opts.headDim;
  const make = rows ?? ((r, n) => gaussianRow(r, n));
  const cache = new KvCache(rt, opts);
  const k: Float32Array[][] = [];
  const v: Float32Array[][] = [];
  const kPtr = rt.alloc(kvDim * 4);
  const vPtr = rt.alloc(kvDim * 4);
  for (let layer = 0; layer < opts.nLayers; layer++) {
    k.push([]);
    v.push([]);
  }
  for (let p = 0; p < nPos; p++) {
    for (let layer = 0; layer < opts.nLayers; layer++) {
      const kRow = make(rand, kvDim);
      const vRow = make(rand, kvDim);
      k[layer].push(kRow);
      v[layer].push(vRow);
      rt.f32(kPtr, kvDim).set(kRow);
      rt.f32(vPtr, kvDim).set(vRow);
      cache.append(layer, p, kPtr, vPtr);
    }
  }
  rt.free(kPtr);
  rt.free(vPtr);
  return { cache, k, v };
}

function attend(cache: KvCache, layer: number, nPos: number, q: Float32Array): Float64Array {
  const n = cache.nHeads * cache.headDim;
  const qPtr = rt.alloc(n * 4);
  const outPtr = rt.alloc(n * 4);
  rt.f32(qPtr, n).set(q);
  cache.attend(layer, nPos, qPtr, outPtr);
  const out = Float64Array.from(rt.f32(outPtr, n));
  rt.free(qPtr);
  rt.free(outPtr);
  return out;
}

test("per-layer formats: each layer attends with its own K and V formats", () => {
  const spec: Array<[KvFormatName, KvFormatName]> = [["f16", "q4_0"], ["q8_0", "q8_0"], ["iq4_nl", "bf16"], ["q5_1", "f32"]];
  const shape: AttentionShape = { nHeads: 4, nKvHeads: 2, headDim: 64 };
  const opts: KvCacheOptions = { ...shape, nLayers: 4, contextSize: 24, layers: pairs(spec), rotation: false };
  const { cache, k, v } = fillCache(opts, 20, 5);
  const q = gaussianRow(seededRandom(6), shape.nHeads * shape.headDim);
  try {
    assert.equal(cache.length, 20);
    const outs = spec.map((_, layer) => attend(cache, layer, 20, q));
    spec.forEach(([kName, vName], layer) => {
      assert.equal(cache.layout(layer).k.name, kName);
      assert.equal(cache.layout(layer).v.name, vName);
      assert.ok(maxRelativeError(outs[layer], attentionFromStored(cache, layer, 20, q)) < 2e-5, `layer ${layer}`);
      // the same pair alone in a one-layer cache gives the identical output
      const single = fillCache({ ...opts, nLayers: 1, layers: pairs([[kName, vName]]) }, 0, 0);
      const kPtr = rt.alloc(128 * 4);
      const vPtr = rt.alloc(128 * 4);
      for (let p = 0; p < 20; p++) {
        rt.f32(kPtr, 128).set(k[layer][p]);
        rt.f32(vPtr, 128).set(v[layer][p]);
        single.cache.append(0, p, kPtr, vPtr);
      }
      rt.free(kPtr);
      rt.free(vPtr);
      assert.deepEqual(Array.from(attend(single.cache, 0, 20, q)), Array.from(outs[layer]), `layer ${layer} alone`);
      single.cache.dispose();
    });
    // and the layers really differ: 4-bit values vs 8-bit values
    const exact = attentionF64(shape, q, k[0], v[0]);
    assert.ok(rmsRelativeError(outs[0], exact) > 1e-3);
  } finally {
    cache.dispose();
  }
});

test("layout: heads on whole blocks get one contiguous plane per kv head; heads splitting blocks keep one row per position", () => {
  const contextSize = 10;
  const cases: Array<[number, KvFormatName, KvFormatName, boolean]> = [
    [64, "q8_0", "q4_0", true],
    [64, "f16", "q5_1", true],
    [32, "iq4_nl", "f32", true],
    [40, "q8_0", "q8_0", false], // 40 values per head: blocks of 32 span heads
    [40, "f16", "f16", true],
    [12, "f16", "bf16", true], // head-major with the per-head kernel (headDim % 8 != 0)
  ];
  for (const [headDim, kName, vName, headMajor] of cases) {
    const shape: AttentionShape = { nHeads: 6, nKvHeads: 3, headDim };
    const opts: KvCacheOptions = { ...shape, nLayers: 1, contextSize, layers: pairs([[kName, vName]]), rotation: false };
    const { cache, k, v } = fillCache(opts, 7, 31 + headDim);
    try {
      const l = cache.layout(0);
      const what = `headDim ${headDim} ${kName}/${vName}`;
      assert.equal(l.headMajor, headMajor, what);
      for (const [side, format, rows, rowBytes, ptr, posStride, headStride] of [
        ["k", l.k, k[0], l.kRowBytes, l.kPtr, l.kPosStride, l.kHeadStride],
        ["v", l.v, v[0], l.vRowBytes, l.vPtr, l.vPosStride, l.vHeadStride],
      ] as const) {
        assert.equal(posStride, headMajor ? rowBytes / 3 : rowBytes, `${what} ${side} position stride`);
        assert.equal(headStride, headMajor ? contextSize * posStride : 0, `${what} ${side} head stride`);
        if (!headMajor) continue;
        // raw storage: head g of position p sits at g·headStride + p·posStride and is the reference bytes of g's slice
        for (let p = 0; p < 7; p++) {
          for (let g = 0; g < 3; g++) {
            const expected = new Uint8Array(posStride);
            format.reference.quantizeRow(rows[p].subarray(g * headDim, (g + 1) * headDim), expected);
            const stored = rt.u8(ptr + g * headStride + p * posStride, posStride);
            assert.deepEqual(Buffer.from(stored), Buffer.from(expected), `${what} ${side} position ${p} head ${g}`);
          }
        }
      }
    } finally {
      cache.dispose();
    }
  }
});

test("rotation: quantized rows are stored rotated (bytes = quantize(H·row)) and attention undoes it", () => {
  const shape: AttentionShape = { nHeads: 4, nKvHeads: 2, headDim: 64 };
  const opts: KvCacheOptions = { ...shape, nLayers: 1, contextSize: 16, layers: pairs([["q8_0", "q4_0"]]), rotation: true };
  const { cache, k, v } = fillCache(opts, 12, 21);
  const q = gaussianRow(seededRandom(22), shape.nHeads * shape.headDim);
  try {
    const l = cache.layout(0);
    assert.deepEqual(l.rotation, { k: 64, v: 64 });
    for (let p = 0; p < 12; p++) {
      for (const [side, format, row, bytes] of [["k", l.k, k[0][p], l.kRowBytes], ["v", l.v, v[0][p], l.vRowBytes]] as const) {
        const rotated = Float32Array.from(row);
        rotateRowReference(rotated, 64);
        const expected = new Uint8Array(bytes);
        format.reference.quantizeRow(rotated, expected);
        assert.deepEqual(Buffer.from(cache.packedRow(0, side, p)), Buffer.from(expected), `${format.name} row ${p}`);
      }
    }
    const out = attend(cache, 0, 12, q);
    assert.ok(maxRelativeError(out, attentionFromStored(cache, 0, 12, q)) < 2e-5);
    assert.ok(rmsRelativeError(out, attentionF64(shape, q, k[0], v[0])) < 0.15);
  } finally {
    cache.dispose();
  }
});

test("rotation of f32 caches (rule 'all') leaves scores and output unchanged within float error", () => {
  for (const headDim of [64, 128]) {
    const shape: AttentionShape = { nHeads: 4, nKvHeads: 2, headDim };
    const base: KvCacheOptions = { ...shape, nLayers: 1, contextSize: 16, layers: pairs([["f32", "f32"]]), rotation: false };
    const plain = fillCache(base, 10, 31);
    const rotated = fillCache({ ...base, rotation: true, rotationRule: "all" }, 10, 31);
    const q = gaussianRow(seededRandom(32), shape.nHeads * shape.headDim);
    try {
      assert.deepEqual(rotated.cache.layout(0).rotation, { k: headDim, v: 64 });
      assert.deepEqual(plain.cache.layout(0).rotation, { k: 0, v: 0 });
      const a = attend(plain.cache, 0, 10, q);
      const b = attend(rotated.cache, 0, 10, q);
      assert.ok(maxRelativeError(b, a) < 1e-5, `headDim ${headDim}: ${maxRelativeError(b, a)}`);
      assert.ok(maxRelativeError(b, attentionF64(shape, q, plain.k[0], plain.v[0])) < 1e-5);
      assert.notDeepEqual(Array.from(b), Array.from(a), "rotation must actually run");
    } finally {
      plain.cache.dispose();
      rotated.cache.dispose();
    }
  }
});

test("rotation follows llama.cpp: off for f16 sides, off when head_dim is not a multiple of 64, off when disabled", () => {
  const make = (headDim: number, nKvHeads: number, spec: [KvFormatName, KvFormatName], rotation: boolean) =>
    new KvCache(rt, { nLayers: 1, nHeads: nKvHeads * 2, nKvHeads, headDim, contextSize: 4, layers: pairs([spec]), rotation });
  const cases: Array<[KvCache, { k: number; v: number }]> = [
    [make(64, 2, ["q4_0", "f16"], true), { k: 64, v: 0 }],
    [make(128, 1, ["f16", "q5_0"], true), { k: 0, v: 64 }],
    [make(8, 4, ["q8_0", "q8_0"], true), { k: 0, v: 0 }],
    [make(64, 2, ["q8_0", "q8_0"], false), { k: 0, v: 0 }],
  ];
  for (const [cache, sizes] of cases) {
    assert.deepEqual(cache.layout(0).rotation, sizes);
    cache.dispose();
  }
});

test("rotation lowers 4-bit key error on rows with outlier channels (why llama.cpp rotates)", () => {
  const shape: AttentionShape = { nHeads: 2, nKvHeads: 1, headDim: 64 };
  // a few channels 20× larger than the rest, as in real K activations
  const outliers = (rand: () => number, n: number) => {
    const row = gaussianRow(rand, n);
    for (const c of [3, 17, 40]) row[c] *= 20;
    return row;
  };
  const base: KvCacheOptions = { ...shape, nLayers: 1, contextSize: 40, layers: pairs([["q4_0", "f32"]]), rotation: false };
  const plain = fillCache(base, 32, 41, outliers);
  const rotated = fillCache({ ...base, rotation: true }, 32, 41, outliers);
  const q = gaussianRow(seededRandom(42), 128, 0.2);
  try {
    const exact = attentionF64(shape, q, plain.k[0], plain.v[0]);
    const errPlain = rmsRelativeError(attend(plain.cache, 0, 32, q), exact);
    const errRotated = rmsRelativeError(attend(rotated.cache, 0, 32, q), exact);
    assert.ok(errRotated < errPlain, `rotated ${errRotated} vs plain ${errPlain}`);
  } finally {
    plain.cache.dispose();
    rotated.cache.dispose();
  }
});

test("length: the last layer's append extends it, setLength truncates, ranges are checked", () => {
  const opts: KvCacheOptions = { nLayers: 2, nHeads: 2, nKvHeads: 1, headDim: 32, contextSize: 8, layers: pairs([["q8_0", "q8_0"], ["f16", "q4_0"]]), rotation: false };
  const cache = new KvCache(rt, opts);
  const row = rt.alloc(32 * 4);
  try {
    assert.equal(cache.length, 0);
    cache.append(0, 0, row, row);
    assert.equal(cache.length, 0, "a position counts once every layer holds it");
    cache.append(1, 0, row, row);
    assert.equal(cache.length, 1);
    cache.setLength(0);
    assert.equal(cache.length, 0);
    assert.throws(() => cache.append(0, 8, row, row), /position 8 is outside the cache \(0 \.\. 7\)/);
    assert.throws(() => cache.append(2, 0, row, row), /layer 2 is outside 0 \.\. 1/);
    assert.throws(() => cache.setLength(9), /cache length 9/);
    assert.throws(() => cache.attend(0, 9, row, row), /9 positions/);
  } finally {
    rt.free(row);
    cache.dispose();
  }
  assert.throws(() => cache.attend(0, 1, 0, 0), /disposed/);
});

test("append and attend allocate nothing: storage and scratch come from the constructor", () => {
  const opts: KvCacheOptions = { nLayers: 2, nHeads: 8, nKvHeads: 4, headDim: 8, contextSize: 8, layers: pairs([["q4_1", "iq4_nl"], ["q8_0", "q5_0"]]), rotation: true };
  const cache = new KvCache(rt, opts);
  const row = rt.alloc(64 * 4);
  const original = rt.alloc;
  let calls = 0;
  rt.alloc = (bytes: number, align?: number) => {
    calls++;
    return original.call(rt, bytes, align);
  };
  try {
    for (let p = 0; p < 8; p++) {
      for (let layer = 0; layer < 2; layer++) {
        cache.append(layer, p, row, row);
        cache.attend(layer, p + 1, row, row);
      }
    }
  } finally {
    rt.alloc = original;
    rt.free(row);
    cache.dispose();
  }
  assert.equal(calls, 0);
});

test("bad options are rejected with the offending value", () => {
  const layers = pairs([["q8_0", "q8_0"]]);
  const base: KvCacheOptions = { nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 64, contextSize: 4, layers, rotation: false };
  assert.throws(() => new KvCache(rt, { ...base, nHeads: 3 }), /nHeads 3 is not a multiple of nKvHeads 2/);
  assert.throws(() => new KvCache(rt, { ...base, nLayers: 2 }), /2 layers, got 1 pairs/);
  assert.throws(() => new KvCache(rt, { ...base, contextSize: 0 }), /contextSize must be a positive integer, got 0/);
  assert.throws(() => new KvCache(rt, { ...base, layers: [{ k: getKvFormat("q8_0"), v: { ...getKvFormat("q8_0"), kv: false } }] }), /cannot hold the V cache/);
});

test("a new cache reads as zeros: memory never handed out is not written, a reused dirty range is cleared", () => {
  const opts: KvCacheOptions = { nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 64, contextSize: 64, layers: [{ k: getKvFormat("q8_0"), v: getKvFormat("f16") }], rotation: false };
  const first = new KvCache(rt, opts);
  const l = first.layout(0);
  // dirty the cache's storage, then give it back and take the same range again
  rt.u8(l.kPtr, l.kBytes).fill(0xa5);
  rt.u8(l.vPtr, 64 * l.vRowBytes).fill(0x5a);
  first.dispose();
  const second = new KvCache(rt, opts);
  const m = second.layout(0);
  assert.ok(rt.u8(m.kPtr, m.kBytes).every((b) => b === 0), "K storage reads as zeros");
  assert.ok(rt.u8(m.vPtr, 64 * m.vRowBytes).every((b) => b === 0), "V storage reads as zeros");
  second.dispose();
  // allocZeroed: a range past anything handed out before is zero untouched; one reaching into a freed dirty range is cleared
  const dirty = rt.alloc(4096);
  rt.u8(dirty, 4096).fill(0xff);
  rt.free(dirty);
  const again = rt.allocZeroed(8192);
  assert.ok(rt.u8(again, 8192).every((b) => b === 0));
  rt.free(again);
});
