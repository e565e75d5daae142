/**
 * Attention from packed K/V blocks (assembly/attention.ts through KvCache) for every K format × every V format:
 * - equal, within a tight bound, to a scalar reference that reads the stored bytes with the formats' reference kernels;
 * - close to float64 attention on the unquantized rows, within a bound per format that grows as bits shrink;
 * - stored rows are byte-identical to the reference quantizer's output.
 * Shapes: head_dim 64 (heads on block boundaries), head_dim 8 (blocks span 4 heads, as stories260K), head_dim 12 with
 * kvDim 36 (heads straddle blocks, rows padded to whole blocks); all GQA (nHeads = 2 × nKvHeads); nPos 1, 5, 33.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getKvFormat } from "../../src/formats/table.js";
import { KV_FORMAT_NAMES, type KvFormatName } from "../../src/formats/types.js";
import { KvCache } from "../../src/kv/cache.js";
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
const BITS: Record<KvFormatName, number> = { f32: 32, f16: 16, bf16: 16, q8_0: 8.5, q5_1: 6, q5_0: 5.5, q4_1: 5, q4_0: 4.5, iq4_nl: 4.5 };
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
    for (const [side, format, values, ptr, bytes, src] of [
      ["K", l.k, l.kRowValues, l.kPtr, l.kRowBytes, kRow],
      ["V", l.v, l.vRowValues, l.vPtr, l.vRowBytes, c.v[p]],
    ] as const) {
      const padded = new Float32Array(values);
      padded.set(src);
      const expected = new Uint8Array(bytes);
      format.reference.quantizeRow(padded, expected);
      const stored = rt.u8(ptr + p * bytes, bytes);
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
            const fromStored = attentionFromStored(rt, cache, 0, nPos, c.q);
            const tight = maxRelativeError(out, fromStored);
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
