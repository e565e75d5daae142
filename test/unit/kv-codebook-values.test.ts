/**
 * kvsplit's codebook values (iq3_nl, iq2_nl, iq3_e8, iq2_e8) in the grouped attention kernel, which sums them in
 * integers (assembly/attention-gqa.ts roundTileWeights, accumulateCodebookTile): each position's weight times its
 * block scale rounded to i16 per tile of 32 positions, two positions per pmaddwd.
 *   1. With a zero query every weight is exactly 1, so the kernel's rounding can be recomputed here step by step (its
 *      f32 operations, the integer sums exact) and must match it to float rounding: this holds the rounding itself
 *      (half to even against the tile's largest scale, the pairing of positions, odd tiles, tiles of the window's
 *      and the sinks' edges, blocks whose scale is 0), not just its bound.
 *   2. With random queries the kernel stays within the rounding's bound of float64 sums (storedAttentionError), and
 *      that bound is not vacuous: the plain difference is nonzero but far below it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getKvFormat } from "../../src/formats/table.js";
import { KV_FORMAT_NAMES, isOwnFormat } from "../../src/formats/types.js";
import { KvCache, type KvCacheOptions } from "../../src/kv/cache.js";
import { defaultRuntime } from "../../src/runtime/wasm.js";
import {
  blockScaleAndMin, errorBeyondBound, gaussianRow, hadamardF64, maxRelativeError, seededRandom, storedAttention,
} from "../helpers/kv-reference.js";

const rt = defaultRuntime();
const f = Math.fround;
const V_TILE = 32;
/** kvsplit's own formats: the codebooks. */
const CODEBOOK_VALUES = KV_FORMAT_NAMES.filter((name) => isOwnFormat(getKvFormat(name)));
const SHAPE = { nHeads: 8, nKvHeads: 2, headDim: 64 };

/** Round half to even, as the kernel's + 1.5·2^23 does. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * A cache of `opts` with `nPos` random positions appended one at a time; after each, every head attends with the query
 * `query(rand)` gives (shapeRow may change the V row first). Returns the cache, each position's query and output.
 */
function attendEachPosition(
  opts: KvCacheOptions, nPos: number, seed: number, query: (rand: () => number, qDim: number) => Float32Array,
  shapeRow?: (v: Float32Array, p: number) => void,
): { cache: KvCache; qs: Float32Array[]; outs: Float32Array[] } {
  const cache = new KvCache(rt, opts);
  const rand = seededRandom(seed);
  const kvDim = opts.nKvHeads * opts.headDim;
  const qDim = opts.nHeads * opts.headDim;
  const ptr = rt.alloc(2 * kvDim * 4);
  const qPtr = rt.alloc(qDim * 4);
  const outPtr = rt.alloc(qDim * 4);
  const qs: Float32Array[] = [];
  const outs: Float32Array[] = [];
  try {
    for (let p = 0; p < nPos; p++) {
      rt.f32(ptr, kvDim).set(gaussianRow(rand, kvDim, 2));
      const v = gaussianRow(rand, kvDim);
      shapeRow?.(v, p);
      rt.f32(ptr + kvDim * 4, kvDim).set(v);
      cache.append(0, p, ptr, ptr + kvDim * 4);
      const q = query(rand, qDim);
      rt.f32(qPtr, qDim).set(q);
      cache.attend(0, p + 1, qPtr, outPtr);
      qs.push(q);
      outs.push(rt.f32(outPtr, qDim).slice());
    }
    return { cache, qs, outs };
  } catch (e) {
    cache.dispose();
    throw e;
  } finally {
    for (const p of [ptr, qPtr, outPtr]) rt.free(p);
  }
}

/**
 * The kernel's arithmetic for weights that are all 1 (a zero query), kv head g's output over positions [0, nPos) of
 * the packed rows: tiles of 32 from position 0; per tile and block, dTop = max |d|, dn = f32(d · f32(1 / dTop)),
 * xq = round(f32(32767 · dn)), acc = f32(acc + f32(f32(Σ xq·L) · f32(f32(1 / 32767) · dTop))); then acc · f32(1 / nPos),
 * rotated back (float64) where the layer rotates V.
 */
function emulatedOutput(cache: KvCache, g: number, nPos: number): Float64Array {
  const l = cache.layout(0);
  const { headDim } = cache;
  const bs = l.v.blockSize;
  const nBlocks = headDim / bs;
  const start = g * headDim;
  const acc = new Float32Array(headDim);
  const values = new Float32Array(l.vRowValues);
  const rows = Array.from({ length: nPos }, (_, p) => {
    const bytes = cache.packedRow(0, "v", p);
    l.v.reference.dequantizeRow(bytes, values);
    const d = Array.from({ length: nBlocks }, (_, b) => {
      const at = (start / bs + b) * l.v.bytesPerBlock;
      return blockScaleAndMin(l.v, bytes.subarray(at, at + l.v.bytesPerBlock))[0];
    });
    const levels = Array.from({ length: headDim }, (_, c) => (d[Math.floor(c / bs)] === 0 ? 0 : Math.round(values[start + c] / d[Math.floor(c / bs)])));
    return { d, levels };
  });
  for (let p0 = 0; p0 < nPos; p0 += V_TILE) {
    const tile = rows.slice(p0, Math.min(p0 + V_TILE, nPos));
    for (let b = 0; b < nBlocks; b++) {
      const dTop = Math.max(...tile.map((r) => Math.abs(r.d[b])));
      const inv = dTop === 0 ? 0 : f(1 / dTop);
      const step = f(f(1 / 32767) * dTop);
      const xq = tile.map((r) => roundHalfEven(f(32767 * f(r.d[b] * inv))));
      for (let c = b * bs; c < (b + 1) * bs; c++) {
        let sum = 0;
        tile.forEach((r, t) => (sum += xq[t] * r.levels[c]));
        acc[c] = f(acc[c] + f(f(sum) * step));
      }
    }
  }
  const invSum = f(1 / nPos);
  const out = Float64Array.from(acc, (a) => f(a * invSum));
  if (l.rotation.v > 0) hadamardF64(out, l.rotation.v);
  return out;
}

for (const vf of CODEBOOK_VALUES) {
  test(`${vf} values, zero query: the kernel's integer sums equal their step-by-step emulation at every position`, () => {
    for (const rotation of [true, false]) {
      // positions 0..69 (three tiles, odd and even counts); without rotation, block 1 of kv head 0 is zero for every
      // fifth position (its scale d = 0) and a large value makes position 40's block 0 scale the tile's largest
      const opts: KvCacheOptions = { nLayers: 1, ...SHAPE, contextSize: 72, layers: [{ k: getKvFormat("q8_0"), v: getKvFormat(vf) }], rotation, rotationRule: "all" };
      const { cache, outs } = attendEachPosition(opts, 70, 3, (_, qDim) => new Float32Array(qDim), (v, p) => {
        if (rotation) return;
        if (p % 5 === 0) v.fill(0, 32, 64);
        if (p === 40) v[3] = 40;
      });
      try {
        assert.ok(cache.layout(0).grouped, "the grouped kernel runs this shape");
        const group = SHAPE.nHeads / SHAPE.nKvHeads;
        for (let p = 0; p < outs.length; p++) {
          for (let g = 0; g < SHAPE.nKvHeads; g++) {
            const want = emulatedOutput(cache, g, p + 1);
            for (let j = 0; j < group; j++) {
              const h = g * group + j;
              const got = outs[p].subarray(h * SHAPE.headDim, (h + 1) * SHAPE.headDim);
              const err = maxRelativeError(got, want);
              assert.ok(err < 1e-6, `${vf} rotation ${rotation} position ${p} head ${h}: ${err.toExponential(2)}`);
            }
          }
        }
      } finally {
        cache.dispose();
      }
    }
  });
}

test("codebook values, random queries: within the rounding's bound of float64 sums, which is not vacuous", () => {
  for (const vf of CODEBOOK_VALUES) {
    const opts: KvCacheOptions = { nLayers: 1, ...SHAPE, contextSize: 100, layers: [{ k: getKvFormat("q8_0"), v: getKvFormat(vf) }], rotation: true, rotationRule: "all" };
    const { cache, qs, outs } = attendEachPosition(opts, 100, 11, gaussianRow);
    let worstPlain = 0;
    let worstBound = 0;
    try {
      outs.forEach((out, p) => {
        const ref = storedAttention(cache, 0, p + 1, qs[p]);
        const err = errorBeyondBound(out, ref);
        assert.ok(err < 2e-5, `${vf} position ${p}: ${err.toExponential(2)} beyond the bound`);
        const top = Math.max(...Array.from(ref.out, Math.abs));
        worstPlain = Math.max(worstPlain, maxRelativeError(out, ref.out));
        worstBound = Math.max(worstBound, Math.max(...ref.bound) / top);
      });
      // the rounding shows (floats alone would differ by about 1e-7) and stays well inside its worst case
      assert.ok(worstPlain > 1e-6, `${vf}: ${worstPlain.toExponential(2)}`);
      assert.ok(worstPlain < worstBound / 4, `${vf}: ${worstPlain.toExponential(2)} vs bound ${worstBound.toExponential(2)}`);
    } finally {
      cache.dispose();
    }
  }
});
