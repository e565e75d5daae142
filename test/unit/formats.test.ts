/**
 * Every block format in THE table (src/formats/table.ts), generically:
 *   1. quantize -> dequantize error within the format's own bound, and RMSE that falls as bits per value rise;
 *   2. the WebAssembly kernels against the scalar TypeScript reference (bytes equal, values equal, dot/axpy/matvec
 *      within stated bounds);
 *   3. the reference bytes against llama.cpp's own quantizer and dequantizer (libggml-base.so, see ggml-oracle.ts),
 *      and the reference dot against llama.cpp's CPU vec_dot.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FORMATS, getFormat, isOwnFormat, rowBytes } from "../../src/formats/table.js";
import type { BlockFormat, FormatName } from "../../src/formats/types.js";
import { defaultRuntime } from "../../src/runtime/wasm.js";
import { f16BitsToF32, f32ToF16Bits, readF16 } from "../../src/formats/reference/scalar.js";
import { ggmlCpuVecDot, ggmlDequantize, ggmlOracleSkip, ggmlQuantize } from "../helpers/ggml-oracle.js";
import { dotTolerance, firstMismatch, referenceDequantize, referenceQuantize } from "../helpers/format-reference.js";
import { seededRandom } from "../helpers/random.js";

// ---- data ---------------------------------------------------------------------------------------------------

function gaussian(n: number, seed: number, scale = 1): Float32Array {
  const rand = seededRandom(seed);
  const out = new Float32Array(n); // (n)
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return out;
}

/** Values that sit exactly on rounding ties of each format, cycled to length n. */
function ties(n: number): Float32Array {
  const pattern = [
    // q8_0 / q8_1: amax 127 makes d = 1, so x·id = x exactly: roundf must go away from zero
    127, 0.5, 1.5, -2.5, 2.5, -0.5, 3.5, -126.5, 64.5, -64.5, 0.25, -0.75, 10.5, -10.5, 11.5, -11.5,
    // q4_0: max −8 makes d = 1: half-integers land on the +8.5 truncation boundary; q4_1: (x − min)/d on .5
    -8, -7.5, -6.5, -0.5, 0.5, 1.5, 6.5, 7.5, 7, -1, 2, 3.5, -3.5, 4.5, -4.5, 5.5,
    // f16 ties (1 + odd × 2^-11) and bf16 ties (1 + odd × 2^-8), each must round to even
    1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 5 * 2 ** -11), 2048 + 1, 2048 + 3, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 5 * 2 ** -8),
    2 ** -24 * 1.5, 2 ** -24 * 0.5, 65504 + 8, -(65504 - 16), 2 ** -14 * (1 + 2 ** -11), 0.1, -0.2, 0.3,
    // q4_0's first-largest rule: +3 then −3 (d from +3), then −3 then +3 (d from −3)
    3, -3, 1, -1, 2, -2, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    -3, 3, 1, -1, 2, -2, 0.5, 0, 0, 0, 0, 0, 0, 0, 0, 0,
  ];
  return Float32Array.from({ length: n }, (_, i) => pattern[i % pattern.length]);
}

function mixedMagnitudes(n: number, seed: number): Float32Array {
  const rand = seededRandom(seed ^ 0x55);
  const out = gaussian(n, seed);
  for (let b = 0; b < n; b += 32) {
    const scale = 2 ** Math.floor(rand() * 28 - 16); // 2^-16 .. 2^11: every fp16 scale stays finite
    for (let j = b; j < Math.min(n, b + 32); j++) out[j] *= scale;
  }
  return out;
}

function spikes(n: number, seed: number): Float32Array {
  const rand = seededRandom(seed ^ 0x99);
  const out = gaussian(n, seed, 0.01);
  for (let b = 0; b < n; b += 32) out[Math.min(n - 1, b + Math.floor(rand() * 32))] = rand() < 0.5 ? -50 : 50;
  return out;
}

/** Scales beyond fp16 (d = inf in every quantized format) and fp16's own overflow edge. */
function overflowing(n: number, seed: number): Float32Array {
  const out = gaussian(n, seed, 1e8);
  for (let i = 0; i < n; i += 5) out[i] = i % 2 === 0 ? 65520 : -65519.99;
  return out;
}

interface Dataset {
  name: string;
  values: Float32Array; // (n)
  /** false when values overflow fp16 scales: only byte agreement is checked then. */
  bounded: boolean;
}

function datasets(n: number): Dataset[] {
  return [
    { name: "gaussian", values: gaussian(n, 1 + n), bounded: true },
    { name: "zeros", values: new Float32Array(n), bounded: true },
    { name: "negative zeros", values: new Float32Array(n).fill(-0), bounded: true },
    { name: "constant 0.75", values: new Float32Array(n).fill(0.75), bounded: true },
    { name: "constant -3", values: new Float32Array(n).fill(-3), bounded: true },
    { name: "ties", values: ties(n), bounded: true },
    { name: "huge (σ 1e4)", values: gaussian(n, 7 + n, 1e4), bounded: true },
    { name: "small (σ 1e-6)", values: gaussian(n, 11 + n, 1e-6), bounded: true },
    { name: "tiny (σ 1e-20)", values: gaussian(n, 13 + n, 1e-20), bounded: true },
    { name: "mixed magnitudes", values: mixedMagnitudes(n, 17 + n), bounded: true },
    { name: "spikes", values: spikes(n, 19 + n), bounded: true },
    { name: "overflow (σ 1e8, ±65520)", values: overflowing(n, 23 + n), bounded: false },
  ];
}

function sizes(format: BlockFormat): number[] {
  return format.blockSize === 1 ? [1, 7, 13, 37, 96, 4099] : [1, 3, 7, 128].map((k) => k * format.blockSize);
}

const SMALL = 2 ** -149;

// ---- per-format error bounds --------------------------------------------------------------------------------

/** The value of largest magnitude in x[start, end): the first one reaching it, sign kept (ggml's "max"). */
function signedMax(x: Float32Array, start: number, end: number): number {
  let amax = 0;
  let max = 0;
  for (let j = start; j < end; j++) if (amax < Math.abs(x[j])) (amax = Math.abs(x[j])), (max = x[j]);
  return max;
}

function minMax(x: Float32Array, start: number, end: number): [number, number] {
  let min = Infinity;
  let max = -Infinity;
  for (let j = start; j < end; j++) (min = Math.min(min, x[j])), (max = Math.max(max, x[j]));
  return [min, max];
}

const fp16 = (v: number): number => f16BitsToF32(f32ToF16Bits(v));
const SLACK = 1 + 2 ** -14; // covers float rounding of x × (1/d) against x / d

/**
 * Largest allowed |x − dequantized x| for element i, given the quantized bytes; d is the float scale llama.cpp
 * computes and D = fp16(d) the stored one, so the bound is the rounding step plus the scale's own fp16 error.
 */
type ElementBound = (x: Float32Array, i: number) => number;

const blockOf = (i: number): [number, number] => [i - (i % 32), i - (i % 32) + 32];

/** Bound for q4_0 / q5_0: d = max / −levels; round to nearest step, except x/d >= levels − 0.5 clamps (error up to |d|). */
function symmetricBound(levels: number): ElementBound {
  return (v, i) => {
    const [s, e] = blockOf(i);
    const d = Math.fround(signedMax(v, s, e) / -levels);
    const steps = d !== 0 ? v[i] / d : 0;
    const rounding = steps >= levels - 0.5 - 1e-6 ? Math.abs(d) : Math.abs(d) / 2;
    return rounding * SLACK + levels * Math.abs(d - fp16(d)) + SMALL;
  };
}

/** Bound for q4_1 / q5_1: d = (max − min) / top, m = min: half a step plus the fp16 errors of d (× top) and of m. */
function affineBound(top: number): ElementBound {
  return (v, i) => {
    const [s, e] = blockOf(i);
    const [min, max] = minMax(v, s, e);
    const d = Math.fround(Math.fround(max - min) / top);
    return (d / 2) * SLACK + top * Math.abs(d - fp16(d)) + Math.abs(min - fp16(min)) + SMALL;
  };
}

/** q8_0 / q8_1: q = round(x / d), d = amax / 127: |err| <= d/2, plus |q| <= 127 times the fp16 error of d. */
const q8Bound: ElementBound = (v, i) => {
  const [s, e] = blockOf(i);
  const d = Math.fround(Math.abs(signedMax(v, s, e)) / 127);
  return d * 0.5 * SLACK + 127 * Math.abs(d - fp16(d)) + SMALL;
};

/** The largest |x| in the 256-value super-block holding element i (the K-quants' scales are relative to it). */
function superBlockAmax(x: Float32Array, i: number): number {
  const s = i - (i % 256);
  let amax = 0;
  for (let j = s; j < Math.min(x.length, s + 256); j++) amax = Math.max(amax, Math.abs(x[j]));
  return amax;
}

/**
 * K-quants (q2_K .. q6_K): the sub-block scales (and mins) are themselves quantized to 4..8 bits against the
 * super-block's largest, and the fit search may clip, so the bound is one whole quantization step over the
 * super-block's range [−A, A], 2A / (levels − 1), plus what a subnormal fp16 d / dmin (absolute error below 2^-24)
 * adds through the largest scale × level (+ min) product.
 */
function superBlockBound(levels: number, largestScaleTimesLevel: number): ElementBound {
  return (v, i) => ((2 * superBlockAmax(v, i)) / (levels - 1)) * SLACK + largestScaleTimesLevel * 2 ** -24 + SMALL;
}

const ERROR_BOUNDS: Partial<Record<FormatName, ElementBound>> = {
  // q8_K: f32 d = A / 127 (no fp16 rounding): half a step
  q8_K: (v, i) => (superBlockAmax(v, i) / 127) * 0.5 * SLACK + SMALL,
  q2_K: superBlockBound(4, 15 * 3 + 15),
  q3_K: superBlockBound(8, 32 * 4),
  q4_K: superBlockBound(16, 63 * 15 + 63),
  q5_K: superBlockBound(32, 63 * 31 + 63),
  q6_K: superBlockBound(64, 128 * 32),
  f32: () => 0,
  f16: (v, i) => Math.max(Math.abs(v[i]) * 2 ** -11, 2 ** -25), // half an ulp: 2^-11 relative, 2^-25 below 2^-14
  bf16: (v, i) => Math.abs(v[i]) * 2 ** -8 + SMALL, // 8 significant bits
  q8_0: q8Bound,
  q8_1: q8Bound,
  q4_0: symmetricBound(8),
  q5_0: symmetricBound(16),
  q4_1: affineBound(15),
  q5_1: affineBound(31),
};

/**
 * Any other 32-value format (e.g. iq4_nl's non-linear grid): within 2^-(bits − 3) of the block's largest |x|, plus
 * 127 times the fp16 error of a scale near amax / 127 (2^-11 relative, 2^-25 absolute when subnormal).
 */
function genericBound(format: BlockFormat): ElementBound {
  const bits = (format.bytesPerBlock * 8) / format.blockSize;
  return (v, i) => {
    const [s, e] = blockOf(i);
    const amax = Math.abs(signedMax(v, s, e));
    return amax * 2 ** -(bits - 3) + Math.max(amax * 2 ** -10, 127 * 2 ** -25) + SMALL;
  };
}

function boundFor(format: BlockFormat): ElementBound {
  return ERROR_BOUNDS[format.name] ?? genericBound(format);
}

// ---- helpers ------------------------------------------------------------------------------------------------

function describeMismatch(what: string, i: number, a: ArrayLike<number>, b: ArrayLike<number>): string {
  return `${what}: first difference at index ${i}: ${a[i]} vs ${b[i]} (lengths ${a.length}, ${b.length})`;
}

const storedFormats = FORMATS.filter((f) => f.kv || f.weight);
/** llama.cpp's formats: the ones its own quantizer and vec_dot can check (kvsplit's own, iq3_nl and iq2_nl, are not in ggml). */
const ggmlFormats = storedFormats.filter((f) => !isOwnFormat(f));

// ---- 1. quantization error ----------------------------------------------------------------------------------

describe("format table", () => {
  it("matches llama.cpp's layout facts for the part-A formats", () => {
    const expected: Record<string, [number, number, number, string]> = {
      f32: [0, 1, 4, "f32"],
      f16: [1, 1, 2, "f16"],
      bf16: [30, 1, 2, "bf16"],
      q8_0: [8, 32, 34, "q8_0"],
      q8_1: [9, 32, 36, "q8_1"],
      q4_0: [2, 32, 18, "q8_0"],
      q4_1: [3, 32, 20, "q8_1"],
    };
    for (const [name, [type, block, bytes, partner]] of Object.entries(expected)) {
      const f = getFormat(name);
      assert.deepEqual([f.ggmlType, f.blockSize, f.bytesPerBlock, f.dotPartner], [type, block, bytes, partner], name);
    }
    assert.equal(getFormat("q8_1").kv, false);
    assert.equal(getFormat("q8_1").weight, false);
  });
});

describe("quantize -> dequantize error within each format's bound", () => {
  for (const format of FORMATS) {
    it(format.name, () => {
      for (const n of sizes(format)) {
        for (const data of datasets(n).filter((d) => d.bounded)) {
          const x = data.values;
          const back = referenceDequantize(format, referenceQuantize(format, x), n);
          const bound = boundFor(format);
          for (let i = 0; i < n; i++) {
            if (format.name === "f16" && Math.abs(x[i]) >= 65520) continue; // beyond fp16: inf, as in llama.cpp
            const err = Math.abs(x[i] - back[i]);
            const limit = bound(x, i);
            assert.ok(err <= limit, `${format.name} n=${n} ${data.name}: |${x[i]} − ${back[i]}| = ${err} > bound ${limit} at ${i}`);
          }
        }
      }
    });
  }

  it("RMSE on gaussian data falls as bits per value rise (by a bit or more)", () => {
    const n = 4096;
    const x = gaussian(n, 2024);
    const rmse = FORMATS.map((format) => {
      const back = referenceDequantize(format, referenceQuantize(format, x), n);
      let sq = 0;
      for (let i = 0; i < n; i++) sq += (x[i] - back[i]) ** 2;
      return { name: format.name, bits: (format.bytesPerBlock * 8) / format.blockSize, rmse: Math.sqrt(sq / n) };
    });
    for (const lo of rmse) {
      for (const hi of rmse) {
        if (hi.bits >= lo.bits + 1) {
          assert.ok(hi.rmse < lo.rmse, `${hi.name} (${hi.bits} b) RMSE ${hi.rmse} should be below ${lo.name} (${lo.bits} b) ${lo.rmse}`);
        }
      }
      // 2-bit formats (q2_K): above 0.2 but below 0.35 (the best fixed 4-level quantizer of a unit gaussian: 0.343)
      const limit = lo.bits < 3 ? 0.35 : 0.2;
      if (lo.name !== "f32") assert.ok(lo.rmse > 0 && lo.rmse < limit, `${lo.name} RMSE ${lo.rmse} vs float on unit gaussian data`);
    }
  });
});

// ---- 2. WebAssembly against the scalar reference -------------------------------------------------------------

describe("WebAssembly kernels equal the scalar reference", () => {
  const rt = defaultRuntime();

  for (const format of FORMATS) {
    const k = format.kernels;
    it(`${format.name}: quantizeRow bytes and dequantizeRow values`, () => {
      assert.equal(typeof rt.k[k.quantizeRow], "function", `missing export ${k.quantizeRow}`);
      assert.equal(typeof rt.k[k.dequantizeRow], "function", `missing export ${k.dequantizeRow}`);
      for (const n of sizes(format)) {
        for (const data of datasets(n)) {
          const bytes = rowBytes(format, n);
          const src = rt.alloc(n * 4);
          const dst = rt.alloc(bytes);
          const back = rt.alloc(n * 4);
          try {
            rt.f32(src, n).set(data.values);
            rt.k[k.quantizeRow](src, dst, n);
            const expected = referenceQuantize(format, data.values);
            const got = rt.u8(dst, bytes).slice();
            const at = firstMismatch(got, expected);
            assert.equal(at, -1, describeMismatch(`${format.name} n=${n} ${data.name} quantized byte`, at, got, expected));
            rt.k[k.dequantizeRow](dst, back, n);
            const values = rt.f32(back, n).slice();
            const want = referenceDequantize(format, expected, n);
            const vat = firstMismatch(values, want);
            assert.equal(vat, -1, describeMismatch(`${format.name} n=${n} ${data.name} dequantized`, vat, values, want));
          } finally {
            rt.free(src);
            rt.free(dst);
            rt.free(back);
          }
        }
      }
    });
  }

  for (const format of storedFormats) {
    const k = format.kernels;
    const partner = getFormat(format.dotPartner);

    it(`${format.name}: dot with ${partner.name} within k·2^-23·Σ(|a|+max|a|)|b| of the reference`, () => {
      assert.equal(typeof rt.k[k.dot], "function", `missing export ${k.dot}`);
      for (const n of sizes(format)) {
        for (const data of datasets(n).filter((d) => d.bounded)) {
          const row = referenceQuantize(format, data.values);
          const xBytes = referenceQuantize(partner, gaussian(n, 99 + n));
          const rowPtr = rt.alloc(row.length);
          const xPtr = rt.alloc(xBytes.length);
          try {
            rt.u8(rowPtr, row.length).set(row);
            rt.u8(xPtr, xBytes.length).set(xBytes);
            const got = rt.k[k.dot](rowPtr, xPtr, n) as number;
            const want = format.reference.dot(row, xBytes, n);
            const tol = dotTolerance(format, n, referenceDequantize(format, row, n), referenceDequantize(partner, xBytes, n));
            assert.ok(Math.abs(got - want) <= tol, `${format.name} n=${n} ${data.name}: dot ${got} vs reference ${want}, tolerance ${tol}`);
          } finally {
            rt.free(rowPtr);
            rt.free(xPtr);
          }
        }
      }
    });

    it(`${format.name}: axpy adds w × value within 2^-22 (|out| + |w × value|) of the reference`, () => {
      assert.equal(typeof rt.k[k.axpy], "function", `missing export ${k.axpy}`);
      for (const n of sizes(format)) {
        for (const data of datasets(n).filter((d) => d.bounded)) {
          const row = referenceQuantize(format, data.values);
          const values = referenceDequantize(format, row, n);
          const start = gaussian(n, 5 + n);
          const w = -0.7310585786300049;
          const rowPtr = rt.alloc(row.length);
          const outPtr = rt.alloc(n * 4);
          try {
            rt.u8(rowPtr, row.length).set(row);
            rt.f32(outPtr, n).set(start);
            rt.k[k.axpy](outPtr, w, rowPtr, n);
            const got = rt.f32(outPtr, n);
            for (let i = 0; i < n; i++) {
              const term = Math.fround(Math.fround(w) * values[i]);
              const want = Math.fround(start[i] + term);
              const tol = 2 ** -22 * (Math.abs(start[i]) + Math.abs(term)) + SMALL;
              assert.ok(Math.abs(got[i] - want) <= tol, `${format.name} n=${n} ${data.name}: axpy[${i}] ${got[i]} vs ${want}`);
            }
          } finally {
            rt.free(rowPtr);
            rt.free(outPtr);
          }
        }
      }
    });

    it(`${format.name}: matvec over a row range and a single row, other outputs untouched`, () => {
      assert.equal(typeof rt.k[k.matvec], "function", `missing export ${k.matvec}`);
      const nRows = 6;
      for (const cols of sizes(format)) {
        const weights = mixedMagnitudes(nRows * cols, 31 + cols);
        const wBytes = rowBytes(format, cols);
        const w = new Uint8Array(nRows * wBytes); // (nRows, wBytes)
        for (let r = 0; r < nRows; r++) w.set(referenceQuantize(format, weights.subarray(r * cols, (r + 1) * cols)), r * wBytes);
        const xBytes = referenceQuantize(partner, gaussian(cols, 37 + cols));
        const xDeq = referenceDequantize(partner, xBytes, cols);
        const wPtr = rt.alloc(w.length);
        const xPtr = rt.alloc(xBytes.length);
        const outPtr = rt.alloc(nRows * 4);
        try {
          rt.u8(wPtr, w.length).set(w);
          rt.u8(xPtr, xBytes.length).set(xBytes);
          for (const [rowStart, rowEnd] of [[1, 5], [3, 4], [0, nRows]]) {
            const sentinel = 12345.5;
            rt.f32(outPtr, nRows).fill(sentinel);
            rt.k[k.matvec](wPtr, xPtr, outPtr, rowStart, rowEnd, cols);
            const out = rt.f32(outPtr, nRows).slice();
            for (let r = 0; r < nRows; r++) {
              if (r < rowStart || r >= rowEnd) {
                assert.equal(out[r], sentinel, `${format.name} cols=${cols}: row ${r} outside [${rowStart}, ${rowEnd}) was written`);
                continue;
              }
              const rowQ = w.subarray(r * wBytes, (r + 1) * wBytes);
              const want = format.reference.dot(rowQ, xBytes, cols);
              const tol = dotTolerance(format, cols, referenceDequantize(format, rowQ, cols), xDeq);
              assert.ok(Math.abs(out[r] - want) <= tol, `${format.name} cols=${cols} rows [${rowStart},${rowEnd}): out[${r}] ${out[r]} vs ${want}`);
            }
          }
        } finally {
          rt.free(wPtr);
          rt.free(xPtr);
          rt.free(outPtr);
        }
      }
    });
  }
});

/**
 * iq4_nl: for a block whose largest |x| is below GROUP_MAX_EPS (1e-15), quantize_row_iq4_nl_impl stores d = 0 and
 * skips the block, then packs nibbles from a scratch array it never wrote for that block (stale or uninitialised
 * stack contents). Those 16 nibble bytes are undefined in llama.cpp (the values they decode to are all ±0 anyway),
 * so both copies have them cleared before comparing; the scale bytes are still compared.
 */
function maskUndefinedBytes(format: BlockFormat, x: Float32Array, mine: Uint8Array, theirs: Uint8Array): void {
  if (format.name !== "iq4_nl") return;
  for (let b = 0; b * format.blockSize < x.length; b++) {
    if (Math.abs(signedMax(x, b * 32, b * 32 + 32)) >= 1e-15) continue;
    mine.fill(0, b * format.bytesPerBlock + 2, (b + 1) * format.bytesPerBlock);
    theirs.fill(0, b * format.bytesPerBlock + 2, (b + 1) * format.bytesPerBlock);
  }
}

// ---- 3. llama.cpp's own bytes ---------------------------------------------------------------------------------

describe("reference agrees with llama.cpp (libggml-base.so)", { skip: ggmlOracleSkip() }, () => {
  for (const format of FORMATS.filter((f) => !isOwnFormat(f))) {
    it(`${format.name}: quantized bytes equal llama.cpp's, dequantized values too`, () => {
      // "ref" is quantize_row_<type>_ref (the table's contract); "cpu" is the CPU backend's from_float, which is what
      // llama.cpp's KV cache stores: the same bytes, except that its AVX q8_0 / q8_1 path rounds exact .5 ties to even
      // (see the last test), so the ties dataset is compared with "ref" only. ggml_quantize_chunk is not compared:
      // for iq4_nl it runs a wider scale search (ntry 7) than quantize_row_iq4_nl_ref (ntry −1).
      for (const n of sizes(format)) {
        for (const how of ["ref", "cpu"] as const) {
          const all = datasets(n).filter((d) => how === "ref" || d.name !== "ties");
          const joined = new Float32Array(all.length * n); // (datasets, n): one ggml call per size and quantizer
          all.forEach((d, i) => joined.set(d.values, i * n));
          const bytes = rowBytes(format, n);
          const theirs = ggmlQuantize(format.name, joined, n, how);
          all.forEach((d, i) => {
            const mine = referenceQuantize(format, d.values);
            const block = theirs.subarray(i * bytes, (i + 1) * bytes).slice();
            maskUndefinedBytes(format, d.values, mine, block);
            const at = firstMismatch(mine, block);
            assert.equal(at, -1, describeMismatch(`${format.name} (${how}) n=${n} ${d.name} byte`, at, mine, block));
          });
        }
        const all = datasets(n);
        if (format.name === "q8_1") continue; // ggml exports no dequantize_row_q8_1
        all.forEach((d) => {
          const mine = referenceQuantize(format, d.values);
          const theirs = ggmlDequantize(format.name, mine, n);
          const ours = referenceDequantize(format, mine, n);
          const at = firstMismatch(ours, theirs);
          assert.equal(at, -1, describeMismatch(`${format.name} n=${n} ${d.name} dequantized`, at, ours, theirs));
        });
      }
    });
  }

  for (const format of ggmlFormats) {
    it(`${format.name}: reference dot within the stated tolerance of llama.cpp's CPU vec_dot`, () => {
      const partner = getFormat(format.dotPartner);
      for (const n of sizes(format)) {
        const nRows = 3;
        const rows = new Uint8Array(nRows * rowBytes(format, n)); // (nRows, rowBytes)
        const xs = new Uint8Array(nRows * rowBytes(partner, n)); // (nRows, partner rowBytes)
        const sources = [gaussian(n, 41 + n), mixedMagnitudes(n, 43 + n), spikes(n, 47 + n)];
        sources.forEach((v, r) => {
          rows.set(referenceQuantize(format, v), r * rowBytes(format, n));
          xs.set(referenceQuantize(partner, gaussian(n, 53 + r + n)), r * rowBytes(partner, n));
        });
        const theirs = ggmlCpuVecDot(format.name, rows, xs, n, nRows);
        for (let r = 0; r < nRows; r++) {
          const row = rows.subarray(r * rowBytes(format, n), (r + 1) * rowBytes(format, n));
          const x = xs.subarray(r * rowBytes(partner, n), (r + 1) * rowBytes(partner, n));
          const want = format.reference.dot(row, x, n);
          const tol = dotTolerance(format, n, referenceDequantize(format, row, n), referenceDequantize(partner, x, n));
          assert.ok(Math.abs(theirs[r] - want) <= tol, `${format.name} n=${n} row ${r}: llama.cpp ${theirs[r]} vs reference ${want}, tol ${tol}`);
        }
      }
    });
  }

  it("q8_0: the CPU backend's quantizer (what a q8_0 KV cache stores) differs from the reference only on exact ties", () => {
    // amax 127 gives d = 1 in both: quantize_row_q8_0_ref rounds x.5 away from zero, the AVX path to even
    const x = new Float32Array(32);
    x.set([127, 0.5, 1.5, -2.5, 2.5, -0.5]);
    const ref = ggmlQuantize("q8_0", x, 32, "ref");
    const cpu = ggmlQuantize("q8_0", x, 32, "cpu");
    const asI8 = (b: Uint8Array) => Array.from(b.subarray(2, 8), (v) => (v << 24) >> 24);
    assert.deepEqual(asI8(ref), [127, 1, 2, -3, 3, -1]);
    assert.deepEqual(asI8(referenceQuantize(getFormat("q8_0"), x)), [127, 1, 2, -3, 3, -1]);
    assert.deepEqual(asI8(cpu), [127, 0, 2, -2, 2, 0]);
    assert.equal(readF16(ref, 0), 1);
    // away from ties they agree byte for byte
    const g = gaussian(32 * 512, 77);
    assert.deepEqual(ggmlQuantize("q8_0", g, 32, "cpu"), ggmlQuantize("q8_0", g, 32, "ref"));
  });
});
