/**
 * Attention from packed K/V blocks (assembly/attention.ts through KvCache) for every K format × every V format:
 * - equal, within a tight bound, to a scalar reference that reads the stored bytes with the formats' reference kernels;
 * - close to float64 attention on the unquantized rows, within a bound per format that grows as bits shrink;
 * - stored rows are byte-identical to the reference quantizer's output.
 * Shapes: head_dim 64 (heads on block boundaries), head_dim 8 (blocks span 4 heads, as stories260K), head_dim 12 with
 * kvDim 36 (heads straddle blocks, rows padded to whole blocks); all GQA (nHeads = 2 × nKvHeads); nPos 1, 5, 33.
 * Then the grouped kernel (assembly/attention-gqa.ts) against the per-head one, the batch calls against token-by-token
 * calls, and thread splits against one thread: all bit for bit.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getKvFormat } from "../../src/formats/table.js";
import { KV_FORMAT_NAMES, isOwnFormat, type KvFormatName } from "../../src/formats/types.js";
import { ATTEND_TOKEN_TILE, KvCache, type KvThreadPool } from "../../src/kv/cache.js";
import type { ParallelTask } from "../../src/runtime/pool.js";
import { WasmRuntime, defaultRuntime, loadKernelModule, relaxedSimdSupported } from "../../src/runtime/wasm.js";
import {
  attentionF64,
  storedAttentionError,
  gaussianRow,
  maxRelativeError,
  rmsRelativeError,
  seededRandom,
  type AttentionShape,
} from "../helpers/kv-reference.js";

const rt = defaultRuntime();

const SHAPES: Array<AttentionShape & { label: string }> = [
  { label: "aligned headDim 64", nHeads: 4, nKvHeads: 2, headDim: 64 },
  { label: "unaligned headDim 8", nHeads: 8, nKvHeads: 4, headDim: 8 },
  { label: "straddling headDim 12, padded kvDim 36", nHeads: 6, nKvHeads: 3, headDim: 12 },
];
const N_POS = [1, 5, 33];
const CONTEXT = 40;

/**
 * Bound on the RMS error (relative to the output's RMS) of attention through one quantized side, the other side f32,
 * on unit Gaussian data. Ordered by bits per value: fewer bits never get a tighter bound.
 */
const BITS: Record<KvFormatName, number> = { f32: 32, f16: 16, bf16: 16, q8_0: 8.5, q5_1: 6, q5_0: 5.5, q4_1: 5, q4_0: 4.5, iq4_nl: 4.5, iq3_nl: 3.5, iq2_nl: 2.5, iq3_e8: 3.25, iq2_e8: 2.25 };
const BOUND: Record<KvFormatName, number> = {
  // worst case measured over these shapes and seeds, about ×1.6–2.5, rounded up
  f32: 1e-6, // measured 1.6e-7
  f16: 2e-3, // 4.4e-4
  bf16: 1e-2, // 3.5e-3
  q8_0: 2.5e-2, // 7.9e-3
  q5_1: 1e-1, // 5.4e-2
  q5_0: 1e-1, // 6.4e-2
  q4_1: 2e-1, // 9.6e-2
  q4_0: 2e-1, // 1.26e-1
  iq4_nl: 2e-1, // 9.2e-2
  iq3_nl: 4e-1, // 1.96e-1
  iq2_nl: 8e-1, // 4.31e-1
  iq3_e8: 4e-1, // 1.97e-1
  iq2_e8: 8e-1, // 4.20e-1
};

test("per-format bounds are ordered by bits per value", () => {
  const names = [...KV_FORMAT_NAMES].sort((a, b) => BITS[b] - BITS[a]);
  for (let i = 1; i < names.length; i++) assert.ok(BOUND[names[i]] >= BOUND[names[i - 1]], `${names[i]} vs ${names[i - 1]}`);
});

interface Case {
  shape: AttentionShape;
  q: Float32Array; // (nHeads·headDim)
  k: Float32Array[]; // (nPos, kvDim)
  v: Float32Array[]; // (nPos, kvDim)
}

function makeCase(shape: AttentionShape, nPos: number, seed: number): Case {
  const rand = seededRandom(seed);
  const kvDim = shape.nKvHeads * shape.headDim;
  return {
    shape,
    q: gaussianRow(rand, shape.nHeads * shape.headDim),
    k: Array.from({ length: nPos }, () => gaussianRow(rand, kvDim)),
    v: Array.from({ length: nPos }, () => gaussianRow(rand, kvDim)),
  };
}

/** Run a one-layer cache of (kName, vName) on `c`; returns the output and the cache (caller disposes). */
function runCache(c: Case, kName: KvFormatName, vName: KvFormatName) {
  const { nHeads, nKvHeads, headDim } = c.shape;
  const kvDim = nKvHeads * headDim;
  const cache = new KvCache(rt, {
    nLayers: 1, nHeads, nKvHeads, headDim, contextSize: CONTEXT,
    layers: [{ k: getKvFormat(kName), v: getKvFormat(vName) }], rotation: false,
  });
  const kPtr = rt.alloc(kvDim * 4);
  const vPtr = rt.alloc(kvDim * 4);
  const qPtr = rt.alloc(nHeads * headDim * 4);
  const outPtr = rt.alloc(nHeads * headDim * 4);
  try {
    c.k.forEach((kRow, p) => {
      rt.f32(kPtr, kvDim).set(kRow);
      rt.f32(vPtr, kvDim).set(c.v[p]);
      cache.append(0, p, kPtr, vPtr);
    });
    rt.f32(qPtr, nHeads * headDim).set(c.q);
    cache.attend(0, c.k.length, qPtr, outPtr);
    assert.deepEqual(Array.from(rt.f32(qPtr, nHeads * headDim)), Array.from(c.q), "attend must not modify q");
    return { out: Float64Array.from(rt.f32(outPtr, nHeads * headDim)), cache };
  } finally {
    for (const p of [kPtr, vPtr, qPtr, outPtr]) rt.free(p);
  }
}

function checkStoredBytes(c: Case, cache: KvCache): void {
  const l = cache.layout(0);
  c.k.forEach((kRow, p) => {
    for (const [side, format, values, bytes, src] of [
      ["K", l.k, l.kRowValues, l.kRowBytes, kRow],
      ["V", l.v, l.vRowValues, l.vRowBytes, c.v[p]],
    ] as const) {
      const padded = new Float32Array(values);
      padded.set(src);
      const expected = new Uint8Array(bytes);
      format.reference.quantizeRow(padded, expected);
      const stored = cache.packedRow(0, side === "K" ? "k" : "v", p);
      assert.deepEqual(Buffer.from(stored), Buffer.from(expected), `${side} row ${p} (${format.name}) differs from the reference quantizer`);
    }
  });
}

for (const shape of SHAPES) {
  test(`attention ${shape.label}: every K × V format against the stored-bytes reference and float64`, () => {
    let seed = 1;
    for (const nPos of N_POS) {
      const c = makeCase(shape, nPos, seed++);
      const exact = attentionF64(shape, c.q, c.k, c.v);
      for (const kName of KV_FORMAT_NAMES) {
        for (const vName of KV_FORMAT_NAMES) {
          const label = `K ${kName} V ${vName} nPos ${nPos}`;
          const { out, cache } = runCache(c, kName, vName);
          try {
            checkStoredBytes(c, cache);
            const tight = storedAttentionError(out, cache, 0, nPos, c.q);
            assert.ok(tight < 2e-5, `${label}: differs from the stored-bytes reference by ${tight.toExponential(2)}`);
            const loose = rmsRelativeError(out, exact);
            const bound = BOUND[kName] + BOUND[vName];
            assert.ok(loose < bound, `${label}: error vs float64 ${loose.toExponential(2)} exceeds ${bound}`);
          } finally {
            cache.dispose();
          }
        }
      }
    }
  });
}

test("fewer bits give a larger attention error: 4-bit worse than 8-bit worse than 16-bit", () => {
  const shape = SHAPES[0];
  const c = makeCase(shape, 33, 99);
  const exact = attentionF64(shape, c.q, c.k, c.v);
  const err = (k: KvFormatName, v: KvFormatName) => {
    const { out, cache } = runCache(c, k, v);
    cache.dispose();
    return rmsRelativeError(out, exact);
  };
  assert.ok(err("q8_0", "f32") < err("q4_0", "f32"));
  assert.ok(err("f32", "q8_0") < err("f32", "q4_0"));
  assert.ok(err("f16", "f16") < err("q8_0", "q8_0"));
});

test("attention over zero positions writes zeros", () => {
  const shape = SHAPES[0];
  const c = makeCase(shape, 1, 7);
  const { cache } = runCache(c, "q8_0", "q4_0");
  const n = shape.nHeads * shape.headDim;
  const qPtr = rt.alloc(n * 4);
  const outPtr = rt.alloc(n * 4);
  rt.f32(outPtr, n).fill(5);
  cache.attend(0, 0, qPtr, outPtr);
  assert.ok(rt.f32(outPtr, n).every((x) => x === 0));
  rt.free(qPtr);
  rt.free(outPtr);
  cache.dispose();
});

/**
 * assembly/attention-common.ts expNonPositive_f32x4 in scalar f32 arithmetic (every step rounded by Math.fround):
 * n = nearest(x·log2 e) (ties to even), r = x − n·C1 − n·C2, Cephes expf's polynomial, times 2^max(n, −126); 0 where
 * x < −87 or x is NaN.
 */
function expNonPositiveReference(x: number): number {
  const f = Math.fround;
  const [log2e, c1, c2, p0, p1, p2, p3, p4, p5] = [1.44269504088896341, 0.693359375, -2.12194440e-4, 1.9875691500e-4,
    1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1].map(f);
  if (!(x >= -87)) return 0;
  const scaled = f(x * log2e);
  const floor = Math.floor(scaled);
  const fraction = scaled - floor;
  const n = fraction > 0.5 || (fraction === 0.5 && floor % 2 !== 0) ? floor + 1 : floor; // round half to even
  let r = f(x - f(n * c1));
  r = f(r - f(n * c2));
  let y = f(f(p0 * r) + p1);
  for (const p of [p2, p3, p4, p5]) y = f(f(y * r) + p);
  y = f(f(f(y * f(r * r)) + r) + 1);
  return f(y * 2 ** Math.max(n, -126));
}

test("softmax exponent: every kernel build's SIMD exp equals its scalar f32 formula bit for bit, edges included", () => {
  const edges = [0, -0, -1e-45, -1e-30, -0.5, -0.34657359, -1, -10, -86.99999, -87, Math.fround(-87.00001), -88, -125, -1000,
    -Infinity, NaN];
  const random = seededRandom(77);
  const xs = Float32Array.from([...edges, ...Array.from({ length: 20000 }, () => -100 * random() ** 2)]);
  const want = Array.from(xs, (x) => expNonPositiveReference(x));
  for (const variant of ["plain", ...(relaxedSimdSupported() ? ["relaxed" as const] : [])] as const) {
    const build = new WasmRuntime(undefined, { module: loadKernelModule(variant) });
    const ptr = build.alloc(xs.length * 4);
    build.f32(ptr, xs.length).set(xs);
    build.k.expShiftedSum_f32(ptr, xs.length, 0); // in place: exp(x − 0)
    const got = Float32Array.from(build.f32(ptr, xs.length));
    for (let i = 0; i < xs.length; i++) assert.ok(Object.is(got[i], want[i]), `${variant} build: exp(${xs[i]}) = ${got[i]}, formula ${want[i]}`);
  }
});

test("softmax exponent: the SIMD exp is within 3e-7 relative of exp on [-87, 0] and 0 below", () => {
  const n = 4003; // not a multiple of 4: the scalar tail runs too
  const ptr = rt.alloc(n * 4);
  const xs = new Float32Array(n);
  for (let i = 0; i < n; i++) xs[i] = -90 * (i / (n - 1)) ** 2 + 1.5; // shifted by max 1.5 inside the kernel
  rt.f32(ptr, n).set(xs);
  const sum = rt.k.expShiftedSum_f32(ptr, n, 1.5);
  const got = Float32Array.from(rt.f32(ptr, n));
  rt.free(ptr);
  let expectedSum = 0;
  for (let i = 0; i < n; i++) {
    const x = Math.fround(xs[i] - 1.5);
    const expected = x < -87 ? 0 : Math.exp(x);
    expectedSum += expected;
    if (x >= -87) assert.ok(Math.abs(got[i] - expected) <= 3e-7 * expected, `exp(${x}) = ${got[i]}, expected ${expected}`);
    else assert.equal(got[i], 0);
  }
  assert.ok(Math.abs(sum - expectedSum) < 1e-5 * expectedSum);
});

// ---- the grouped kernel, batches and threads -------------------------------------------------------------------

/** Shapes for the grouped kernel: query groups of 8 (two quads), 3 and 5 (padded quads) and 1, with and without rotation. */
const GROUPED_SHAPES: Array<AttentionShape & { label: string; rotation: boolean }> = [
  { label: "group 8, headDim 64, rotated", nHeads: 16, nKvHeads: 2, headDim: 64, rotation: true },
  { label: "group 3, headDim 32", nHeads: 6, nKvHeads: 2, headDim: 32, rotation: false },
  { label: "group 5, headDim 64", nHeads: 10, nKvHeads: 2, headDim: 64, rotation: false },
  { label: "group 1, headDim 64, rotated", nHeads: 3, nKvHeads: 3, headDim: 64, rotation: true },
];

interface Batch {
  cache: KvCache;
  nTokens: number;
  q: Float32Array; // (nTokens, nHeads·headDim)
  k: Float32Array; // (nTokens, kvDim)
  v: Float32Array; // (nTokens, kvDim)
}

function makeBatch(shape: AttentionShape, kName: KvFormatName, vName: KvFormatName, rotation: boolean, nTokens: number, seed: number, pool?: KvThreadPool): Batch {
  const rand = seededRandom(seed);
  const kvDim = shape.nKvHeads * shape.headDim;
  const cache = new KvCache(rt, {
    nLayers: 1, ...shape, contextSize: nTokens + 3,
    layers: [{ k: getKvFormat(kName), v: getKvFormat(vName) }], rotation, rotationRule: "all", pool,
  });
  return {
    cache, nTokens,
    q: gaussianRow(rand, nTokens * shape.nHeads * shape.headDim),
    k: gaussianRow(rand, nTokens * kvDim, 2),
    v: gaussianRow(rand, nTokens * kvDim),
  };
}

/** Copy a Float32Array into fresh WebAssembly memory; returns its pointer. */
function put(values: Float32Array): number {
  const ptr = rt.alloc(values.length * 4);
  rt.f32(ptr, values.length).set(values);
  return ptr;
}

/**
 * Run one attention kernel ("attendGrouped_packed" | "attendHeads_packed") over a whole batch, single-threaded; the
 * grouped one with items of `tokensPerItem` tokens.
 */
function runKernel(b: Batch, kernel: string, firstPos: number, tokensPerItem = 1): Float32Array {
  const c = b.cache;
  const qDim = c.nHeads * c.headDim;
  const items = kernel === "attendGrouped_packed" ? Math.ceil(b.nTokens / tokensPerItem) * c.nKvHeads : b.nTokens * c.nHeads;
  const scratch = rt.alloc(Number(rt.k.attendScratchBytes(c.nHeads, c.nKvHeads, c.headDim, c.contextSize)));
  const qPtr = put(b.q);
  const outPtr = rt.alloc(b.nTokens * qDim * 4);
  try {
    rt.k[kernel](0, items, scratch, c.layout(0).descPtr, qPtr, outPtr, firstPos, 0, 0, 0, 0, b.nTokens, tokensPerItem);
    return Float32Array.from(rt.f32(outPtr, b.nTokens * qDim));
  } finally {
    for (const p of [scratch, qPtr, outPtr]) rt.free(p);
  }
}

function appendAll(b: Batch): void {
  const kPtr = put(b.k);
  const vPtr = put(b.v);
  b.cache.appendBatch(0, 0, b.nTokens, kPtr, vPtr);
  rt.free(kPtr);
  rt.free(vPtr);
  assert.equal(b.cache.length, b.nTokens);
}

for (const shape of GROUPED_SHAPES) {
  test(`grouped kernel (${shape.label}) equals the per-head kernel, every K × V format, causal batch`, () => {
    let seed = 100;
    for (const kName of KV_FORMAT_NAMES) {
      for (const vName of KV_FORMAT_NAMES) {
        // a whole tile of tokens and a partial one
        const b = makeBatch(shape, kName, vName, shape.rotation, ATTEND_TOKEN_TILE + 3, seed++);
        try {
          assert.ok(b.cache.layout(0).grouped);
          appendAll(b);
          const grouped = runKernel(b, "attendGrouped_packed", 0);
          const perHead = runKernel(b, "attendHeads_packed", 0);
          assert.ok(grouped.every(Number.isFinite), `K ${kName} V ${vName}: finite`);
          // tiles of tokens sharing each decoded row (8 + 3 of the 11; the kernel's largest tile) give each token's bits
          const tile = Number(rt.k.attendTokenTile());
          assert.equal(tile, 8);
          assert.deepEqual(runKernel(b, "attendGrouped_packed", 0, tile), grouped, `K ${kName} V ${vName}: tiles of ${tile} tokens`);
          // a larger tile than the scratch has slots for traps instead of writing past them
          assert.throws(() => runKernel(b, "attendGrouped_packed", 0, tile + 1), WebAssembly.RuntimeError);
          // For llama.cpp's formats the two are identical bit for bit (same float operations in the same order); the
          // grouped kernel sums kvsplit's codebook keys' block terms in another order than their dot_ kernels (one
          // hsum per block for four heads), and the per-format dot_/axpy_ kernels (assembly/formats) may be re-tuned
          // with another summation order: a reassociation of f32 sums over headDim values and 11 positions stays far
          // below 1e-5 of the largest output. kvsplit's codebook values the grouped kernel sums in integers (its
          // weights rounded to i16), so there each kernel is held to the stored-bytes reference instead, token by
          // token: the per-head one exactly as elsewhere, the grouped one within the rounding's bound.
          if (isOwnFormat(getKvFormat(vName))) {
            const qDim = shape.nHeads * shape.headDim;
            for (let t = 0; t < b.nTokens; t++) {
              const q = b.q.subarray(t * qDim, (t + 1) * qDim);
              const at = (out: Float32Array) => out.subarray(t * qDim, (t + 1) * qDim);
              const errGrouped = storedAttentionError(at(grouped), b.cache, 0, t + 1, q);
              const errPerHead = storedAttentionError(at(perHead), b.cache, 0, t + 1, q, undefined, false);
              assert.ok(errGrouped < 2e-5 && errPerHead < 2e-5, `K ${kName} V ${vName} token ${t}: ${errGrouped.toExponential(2)}, ${errPerHead.toExponential(2)}`);
            }
            continue;
          }
          const err = maxRelativeError(grouped, perHead);
          assert.ok(err <= 1e-5, `K ${kName} V ${vName}: grouped and per-head kernels differ by ${err.toExponential(2)}`);
        } finally {
          b.cache.dispose();
        }
      }
    }
  });
}

/** Token-by-token append and attend on a fresh cache: the reference for the batch calls. */
function tokenByToken(b: Batch, shape: AttentionShape, kName: KvFormatName, vName: KvFormatName, rotation: boolean): { out: Float32Array; bytes: Uint8Array } {
  const ref = makeBatch(shape, kName, vName, rotation, b.nTokens, 0);
  const c = ref.cache;
  const kvDim = c.kvDim;
  const qDim = c.nHeads * c.headDim;
  const kPtr = rt.alloc(kvDim * 4);
  const vPtr = rt.alloc(kvDim * 4);
  const qPtr = rt.alloc(qDim * 4);
  const outPtr = rt.alloc(qDim * 4);
  const out = new Float32Array(b.nTokens * qDim);
  try {
    for (let t = 0; t < b.nTokens; t++) {
      rt.f32(kPtr, kvDim).set(b.k.subarray(t * kvDim, (t + 1) * kvDim));
      rt.f32(vPtr, kvDim).set(b.v.subarray(t * kvDim, (t + 1) * kvDim));
      c.append(0, t, kPtr, vPtr);
      rt.f32(qPtr, qDim).set(b.q.subarray(t * qDim, (t + 1) * qDim));
      c.attend(0, t + 1, qPtr, outPtr);
      out.set(rt.f32(outPtr, qDim), t * qDim);
    }
    return { out, bytes: storedRows(c, b.nTokens) };
  } finally {
    for (const p of [kPtr, vPtr, qPtr, outPtr]) rt.free(p);
    c.dispose();
  }
}

/** Every stored K row then every V row of positions [0, nPos) of layer 0, as packedRow gives them. */
function storedRows(c: KvCache, nPos: number): Uint8Array {
  const rows: Uint8Array[] = [];
  for (const side of ["k", "v"] as const) for (let p = 0; p < nPos; p++) rows.push(c.packedRow(0, side, p));
  return Uint8Array.from(rows.flatMap((r) => [...r]));
}

function batchResult(b: Batch, firstPos = 0): { out: Float32Array; bytes: Uint8Array } {
  const c = b.cache;
  const qDim = c.nHeads * c.headDim;
  appendAll(b);
  const qPtr = put(b.q);
  const outPtr = rt.alloc(b.nTokens * qDim * 4);
  try {
    c.attendBatch(0, firstPos, b.nTokens, qPtr, outPtr);
    return { out: Float32Array.from(rt.f32(outPtr, b.nTokens * qDim)), bytes: storedRows(c, b.nTokens) };
  } finally {
    rt.free(qPtr);
    rt.free(outPtr);
  }
}

const BATCH_CASES: Array<[AttentionShape & { rotation: boolean }, KvFormatName, KvFormatName]> = [
  [{ nHeads: 8, nKvHeads: 2, headDim: 64, rotation: true }, "q8_0", "q4_0"],
  [{ nHeads: 8, nKvHeads: 2, headDim: 64, rotation: false }, "f16", "f16"],
  [{ nHeads: 6, nKvHeads: 2, headDim: 32, rotation: false }, "q5_1", "iq4_nl"],
  [{ nHeads: 8, nKvHeads: 4, headDim: 8, rotation: false }, "q4_0", "q8_0"], // per-head kernel (blocks span heads)
  [{ nHeads: 6, nKvHeads: 3, headDim: 12, rotation: false }, "bf16", "q5_0"], // per-head kernel (headDim % 8 != 0)
];

test("appendBatch and attendBatch equal append and attend token by token, bit for bit", () => {
  let seed = 300;
  for (const [shape, kName, vName] of BATCH_CASES) {
    const b = makeBatch(shape, kName, vName, shape.rotation, 37, seed++);
    try {
      const batch = batchResult(b);
      const single = tokenByToken(b, shape, kName, vName, shape.rotation);
      const label = `${kName}/${vName} headDim ${shape.headDim}`;
      assert.deepEqual(Buffer.from(batch.bytes), Buffer.from(single.bytes), `${label}: stored bytes`);
      assert.deepEqual(batch.out, single.out, `${label}: outputs`);
      assert.ok(batch.out.every(Number.isFinite));
    } finally {
      b.cache.dispose();
    }
  }
});

test("attendBatch continues a cache: firstPos > 0 attends the earlier positions too", () => {
  const shape = { nHeads: 8, nKvHeads: 2, headDim: 64 };
  const b = makeBatch(shape, "q8_0", "q8_0", true, 12, 400);
  const c = b.cache;
  const qDim = c.nHeads * c.headDim;
  try {
    appendAll(b);
    const qPtr = put(b.q);
    const outAll = rt.alloc(12 * qDim * 4);
    c.attendBatch(0, 0, 12, qPtr, outAll);
    const tail = rt.alloc(4 * qDim * 4);
    c.attendBatch(0, 8, 4, qPtr + 8 * qDim * 4, tail);
    assert.deepEqual(Float32Array.from(rt.f32(tail, 4 * qDim)), Float32Array.from(rt.f32(outAll + 8 * qDim * 4, 4 * qDim)));
    assert.throws(() => c.attendBatch(0, 10, 6, qPtr, outAll), /batch of 6 positions from 10 is outside the cache \(0 \.\. 14\)/);
    for (const p of [qPtr, outAll, tail]) rt.free(p);
  } finally {
    c.dispose();
  }
});

/**
 * A pool that runs each thread's share in turn on this thread, with the pool contract's split and per-thread scratch:
 * checks that items are independent and scratch is per thread without depending on worker_threads.
 */
function sequentialPool(nThreads: number): KvThreadPool {
  return {
    nThreads,
    run(tasks: ParallelTask[]) {
      for (let t = nThreads - 1; t >= 0; t--) { // reverse order: a thread never relies on an earlier one's scratch
        for (const task of tasks) {
          const grain = task.grain ?? 1;
          const units = Math.ceil(task.count / grain);
          const bound = (i: number) => Math.min(task.count, Math.floor((units * i) / nThreads) * grain);
          if (bound(t) >= bound(t + 1)) continue;
          const args = task.args.slice();
          args[task.startArg] = bound(t);
          args[task.endArg] = bound(t + 1);
          if (task.threadArg) args[task.threadArg.index] = task.threadArg.base + t * task.threadArg.stride;
          rt.k[task.kernel](...args);
        }
      }
    },
  };
}

test("split across threads (1, 2, 3, 5 shares) equals one thread bit for bit; a real ThreadPool too", async () => {
  const { ThreadPool } = await import("../../src/runtime/pool.js");
  const real = new ThreadPool(rt.memory, 2);
  try {
    let seed = 500;
    for (const [shape, kName, vName] of BATCH_CASES) {
      const one = makeBatch(shape, kName, vName, shape.rotation, 23, seed);
      const expected = batchResult(one);
      one.cache.dispose();
      for (const pool of [sequentialPool(2), sequentialPool(3), sequentialPool(5), real]) {
        const b = makeBatch(shape, kName, vName, shape.rotation, 23, seed, pool);
        try {
          const got = batchResult(b);
          const label = `${kName}/${vName} headDim ${shape.headDim}, ${pool.nThreads} threads`;
          assert.deepEqual(Buffer.from(got.bytes), Buffer.from(expected.bytes), `${label}: bytes`);
          assert.deepEqual(got.out, expected.out, `${label}: outputs`);
          // single-token attend through the pool too
          const qDim = b.cache.nHeads * b.cache.headDim;
          const qPtr = put(b.q.subarray(22 * qDim));
          const outPtr = rt.alloc(qDim * 4);
          b.cache.attend(0, 23, qPtr, outPtr);
          assert.deepEqual(Float32Array.from(rt.f32(outPtr, qDim)), expected.out.subarray(22 * qDim), `${label}: attend`);
          rt.free(qPtr);
          rt.free(outPtr);
        } finally {
          b.cache.dispose();
        }
      }
      seed++;
    }
  } finally {
    real.dispose();
  }
});
