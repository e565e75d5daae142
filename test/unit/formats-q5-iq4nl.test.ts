/**
 * Format-specific checks for q5_0, q5_1 and iq4_nl:
 *  - the scalar reference quantizes byte for byte as llama.cpp's quantize_row_<type>_ref (libggml-base.so through
 *    test/helpers/ggml-oracle.ts) on random and adversarial rows, and so does the CPU backend's from_float (what the
 *    KV cache uses);
 *  - dequantization equals llama.cpp's bit for bit;
 *  - the WebAssembly kernels equal the reference (quantize, dequantize, axpy exactly; dot and matvec within float
 *    rounding), and the dot agrees with llama.cpp's CPU vec_dot and with the float64 dot of the original floats.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { getFormat, rowBytes } from "../../src/formats/table.js";
import type { BlockFormat } from "../../src/formats/types.js";
import { defaultRuntime } from "../../src/runtime/wasm.js";
import { readF16 } from "../../src/formats/reference/scalar.js";
import { IQ4_NL_VALUES, leadingTinyBlocksIq4Nl, nearestLevelIq4Nl } from "../../src/formats/reference/iq4_nl.js";
import { ggmlCpuVecDot, ggmlDequantize, ggmlOracleSkip, ggmlQuantize } from "../helpers/ggml-oracle.js";
import { referenceDequantize, referenceQuantize } from "../helpers/format-reference.js";
import { seededRandom } from "../helpers/random.js";

const FORMATS = ["q5_0", "q5_1", "iq4_nl"] as const;
const oracleSkip = ggmlOracleSkip();
/** Relative RMS round-trip error on N(0,1) rows (measured: q5_0 0.042, q5_1 0.038, iq4_nl 0.079 with the _ref quantizer). */
const REL_RMSE_BOUND: Record<(typeof FORMATS)[number], number> = { q5_0: 0.05, q5_1: 0.045, iq4_nl: 0.09 };

// ---- inputs ----

function gaussianRow(n: number, seed: number, scale: number): Float32Array {
  const next = seededRandom(seed);
  const row = new Float32Array(n); // (n)
  for (let i = 0; i < n; i++) {
    const u = Math.max(next(), 1e-12);
    row[i] = scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
  }
  return row;
}

/** One 32-value block from a generator of its index. */
function block(f: (j: number) => number): number[] {
  return Array.from({ length: 32 }, (_, j) => f(j));
}

/** Blocks chosen to hit the quantizers' edges: ties, rounding boundaries, zero and tiny blocks, fp16 limits. */
function adversarialBlocks(): number[][] {
  const levelMidpoints = IQ4_NL_VALUES.slice(1).map((v, i) => (v + IQ4_NL_VALUES[i]) / 2);
  return [
    block(() => 0),
    block(() => 1.5),
    block(() => -2.25),
    block((j) => (j === 7 ? 3 : 0)),
    block((j) => (j === 3 ? -3 : j === 9 ? 3 : 0.1 * j)), // |max| tie: the first (negative) wins
    block((j) => (j === 3 ? 3 : j === 9 ? -3 : 0.1 * j)),
    block((j) => (j === 0 ? -16 : j - 15.5)), // d = 1 for q5_0: every x·id + 16.5 lands on an integer
    block((j) => (j === 0 ? 16 : 15.5 - j)),
    block((j) => (j === 0 ? -16 : j - 15.5 + (j % 2 ? 1e-6 : -1e-6))),
    block((j) => (j === 0 ? 31 : j === 1 ? 0 : j + 0.5 - 1)), // q5_1 with d = 1: x − min + 0.5 on integers
    block((j) => (j === 0 ? -127 : levelMidpoints[j % 15])), // iq4_nl with trial scale 1: level ties go up
    block((j) => (j === 0 ? 127 : -levelMidpoints[j % 15])),
    block((j) => (j === 0 ? -127 : levelMidpoints[j % 15] + (j % 2 ? 1e-4 : -1e-4))),
    block((j) => (j % 2 ? 1e-16 : -3e-16)), // below ggml's GROUP_MAX_EPS
    block((j) => (j % 3 ? 2e-15 : -1e-15)),
    block((j) => 1e-6 * (j - 16)), // fp16 subnormal scales
    block((j) => 1e-30 * (j + 1)), // squares underflow: iq4_nl's weighted fit sees Σ w q² = 0
    block((j) => 6e4 * Math.sin(j)), // near fp16's largest finite value
    block((j) => 1e6 * Math.cos(j)), // scales overflow fp16
    block((j) => -1 - j), // all negative
    block((j) => 100 + j * 1e-3), // narrow range far from zero
  ];
}

/**
 * Many blocks of varied shape (Gaussian, uniform, heavy-tailed, on a coarse grid) and scale (1e-4..1e4): enough
 * values that float-vs-double slips in a quantizer's arithmetic change some stored byte.
 */
function manyBlocks(nBlocks: number, seed: number): Float32Array {
  const next = seededRandom(seed);
  const out = new Float32Array(32 * nBlocks); // (nBlocks · 32)
  for (let b = 0; b < nBlocks; b++) {
    const scale = 10 ** (8 * next() - 4);
    const shape = b % 4;
    const offset = b % 7 === 0 ? scale * (next() - 0.5) * 4 : 0;
    for (let j = 0; j < 32; j++) {
      const u = Math.max(next(), 1e-12);
      const g = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * next());
      const v = shape === 0 ? g : shape === 1 ? 2 * next() - 1 : shape === 2 ? g / Math.max(next(), 0.05) : Math.round(g * 8) / 8;
      out[b * 32 + j] = offset + scale * v;
    }
  }
  return out;
}

/** Rows of 32·k values: random at several scales and lengths, the adversarial blocks alone and interleaved. */
function testRows(): Float32Array[] {
  const rows: Float32Array[] = [];
  for (const [k, scale, seed] of [[1, 1, 1], [2, 0.01, 2], [3, 50, 3], [7, 1, 4], [64, 0.3, 5]] as const) {
    rows.push(gaussianRow(32 * k, seed, scale));
  }
  const adversarial = adversarialBlocks();
  rows.push(Float32Array.from(adversarial.flat()));
  const mixed: number[] = [];
  adversarial.forEach((b, i) => mixed.push(...Array.from(gaussianRow(32, 100 + i, 2)), ...b));
  rows.push(Float32Array.from(mixed));
  rows.push(manyBlocks(32768, 9));
  return rows;
}

// ---- helpers ----

/** Blocks of a row whose nibbles llama.cpp leaves uninitialised (iq4_nl: a leading run of blocks with |x| < 1e-15). */
function undefinedNibbleBlocks(name: string, x: Float32Array): Set<number> {
  const count = name === "iq4_nl" ? leadingTinyBlocksIq4Nl(x) : 0;
  return new Set(Array.from({ length: count }, (_, b) => b));
}

/** Compare two rows byte for byte, except the nibbles of the given iq4_nl blocks (bytes 2..17). */
function assertSameBytes(actual: Uint8Array, expected: Uint8Array, format: BlockFormat, skipNibbles: Set<number>, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    const b = Math.floor(i / format.bytesPerBlock);
    if (skipNibbles.has(b) && i % format.bytesPerBlock >= 2) continue;
    if (actual[i] !== expected[i]) {
      assert.fail(`${what}: first difference at byte ${i} (block ${b}, offset ${i % format.bytesPerBlock}): ${actual[i]} vs ${expected[i]}`);
    }
  }
}

function assertSameFloats(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < actual.length; i++) {
    if (!Object.is(actual[i], expected[i])) assert.fail(`${what}: first difference at ${i}: ${actual[i]} vs ${expected[i]}`);
  }
}

/** Run a WebAssembly kernel on copies of the inputs; `outBytes` bytes of output are read back. */
class Wasm {
  readonly rt = defaultRuntime();
  private ptrs: number[] = [];
  put(bytes: Uint8Array | Float32Array): number {
    const u8 = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const p = this.rt.alloc(Math.max(u8.length, 16), 64);
    this.rt.u8(p, u8.length).set(u8);
    this.ptrs.push(p);
    return p;
  }
  space(bytes: number): number {
    const p = this.rt.alloc(Math.max(bytes, 16), 64);
    this.rt.u8(p, bytes).fill(0);
    this.ptrs.push(p);
    return p;
  }
  freeAll(): void {
    for (const p of this.ptrs) this.rt.free(p);
    this.ptrs = [];
  }
}

function partnerOf(format: BlockFormat, x: Float32Array): Uint8Array {
  return referenceQuantize(getFormat(format.dotPartner), x);
}

// ---- tests ----

describe("q5_0 / q5_1 / iq4_nl table entries", () => {
  it("have llama.cpp's type ids, block sizes and dot partners", () => {
    const expected = { q5_0: [6, 22, "q8_0"], q5_1: [7, 24, "q8_1"], iq4_nl: [20, 18, "q8_0"] } as const;
    for (const name of FORMATS) {
      const f = getFormat(name);
      assert.deepEqual([f.ggmlType, f.bytesPerBlock, f.dotPartner], expected[name]);
      assert.equal(f.blockSize, 32);
      assert.ok(f.kv && f.weight);
    }
  });

  it("iq4_nl's nearest level breaks ties upward and clamps", () => {
    assert.equal(nearestLevelIq4Nl(-200), 0);
    assert.equal(nearestLevelIq4Nl(500), 15);
    assert.equal(nearestLevelIq4Nl((-127 + -104) / 2), 1);
    assert.equal(nearestLevelIq4Nl((-127 + -104) / 2 - 0.01), 0);
    assert.equal(nearestLevelIq4Nl(0), 8); // |0 − (−10)| = 10 > |0 − 1| = 1
    assert.equal(nearestLevelIq4Nl(7), 9); // a tie between 1 and 13 goes up
  });
});

for (const name of FORMATS) {
  const format = getFormat(name);
  const rows = testRows();

  describe(`${name} against llama.cpp`, { skip: oracleSkip }, () => {
    it("quantizes every row byte for byte as quantize_row_ref", () => {
      for (const [i, x] of rows.entries()) {
        const expected = ggmlQuantize(name, x, x.length, "ref");
        assertSameBytes(referenceQuantize(format, x), expected, format, undefinedNibbleBlocks(name, x), `${name} row ${i}`);
      }
    });

    it("the CPU backend's from_float (the KV cache path) gives the same bytes as quantize_row_ref", () => {
      for (const [i, x] of rows.entries()) {
        const cpu = ggmlQuantize(name, x, x.length, "cpu");
        const ref = ggmlQuantize(name, x, x.length, "ref");
        assertSameBytes(cpu, ref, format, undefinedNibbleBlocks(name, x), `${name} row ${i}`);
      }
    });

    it("dequantizes bit for bit as dequantize_row", () => {
      for (const [i, x] of rows.entries()) {
        const bytes = referenceQuantize(format, x);
        assertSameFloats(referenceDequantize(format, bytes, x.length), ggmlDequantize(name, bytes, x.length), `${name} row ${i}`);
      }
      // arbitrary bytes too (every nibble, high bit and scale pattern), with finite fp16 scales
      const next = seededRandom(77);
      const n = 32 * 16;
      const bytes = Uint8Array.from({ length: rowBytes(format, n) }, () => Math.floor(next() * 256));
      for (let b = 0; b < n / 32; b++) bytes[b * format.bytesPerBlock + 1] &= 0x7b; // keep d (and q5_1's m) finite
      if (name === "q5_1") for (let b = 0; b < n / 32; b++) bytes[b * format.bytesPerBlock + 3] &= 0x7b;
      assertSameFloats(referenceDequantize(format, bytes, n), ggmlDequantize(name, bytes, n), `${name} random bytes`);
    });

    it("the reference dot matches llama.cpp's CPU vec_dot", () => {
      const n = 32 * 64;
      const nRows = 8;
      const w = gaussianRow(n * nRows, 11, 1);
      const x = gaussianRow(n * nRows, 12, 1);
      const wBytes = referenceQuantize(format, w);
      const xBytes = partnerOf(format, x);
      const llama = ggmlCpuVecDot(name, wBytes, xBytes, n, nRows);
      const rb = rowBytes(format, n);
      const pb = rowBytes(getFormat(format.dotPartner), n);
      for (let r = 0; r < nRows; r++) {
        const ours = format.reference.dot(wBytes.subarray(r * rb, (r + 1) * rb), xBytes.subarray(r * pb, (r + 1) * pb), n);
        // llama.cpp sums blocks in float with SIMD partial sums; the bound is float rounding over 64 blocks
        assert.ok(Math.abs(ours - llama[r]) <= 1e-5 * Math.sqrt(n) * 4, `${name} row ${r}: ${ours} vs ${llama[r]}`);
      }
    });
  });

  describe(`${name} WebAssembly kernels against the reference`, () => {
    it(`quantizeRow_${name} writes the reference's bytes`, () => {
      const wasm = new Wasm();
      try {
        for (const [i, x] of rows.entries()) {
          const src = wasm.put(x);
          const nBytes = rowBytes(format, x.length);
          const dst = wasm.space(nBytes);
          wasm.rt.k[format.kernels.quantizeRow](src, dst, x.length);
          assertSameBytes(wasm.rt.u8(dst, nBytes).slice(), referenceQuantize(format, x), format, new Set(), `${name} row ${i}`);
        }
      } finally {
        wasm.freeAll();
      }
    });

    it(`dequantizeRow_${name} and axpy_${name} equal the reference exactly`, () => {
      const wasm = new Wasm();
      try {
        for (const [i, x] of rows.entries()) {
          const bytes = referenceQuantize(format, x);
          const values = referenceDequantize(format, bytes, x.length);
          const src = wasm.put(bytes);
          const dst = wasm.space(4 * x.length);
          wasm.rt.k[format.kernels.dequantizeRow](src, dst, x.length);
          assertSameFloats(wasm.rt.f32(dst, x.length).slice(), values, `${name} dequantize row ${i}`);

          const start = gaussianRow(x.length, 300 + i, 1);
          const w = Math.fround(0.37);
          const out = wasm.put(start);
          wasm.rt.k[format.kernels.axpy](out, w, src, x.length);
          const expected = start.map((o, j) => Math.fround(o + Math.fround(w * values[j])));
          assertSameFloats(wasm.rt.f32(out, x.length).slice(), expected, `${name} axpy row ${i}`);
        }
      } finally {
        wasm.freeAll();
      }
    });

    it(`dot_${name} and matvec_${name} agree with the reference dot; the dot is close to the float one`, () => {
      const wasm = new Wasm();
      try {
        const cols = 32 * 24;
        const nRows = 9;
        const w = gaussianRow(cols * nRows, 21, 1);
        const x = gaussianRow(cols, 22, 1);
        const wBytes = referenceQuantize(format, w);
        const xBytes = partnerOf(format, x);
        const rb = rowBytes(format, cols);
        const wPtr = wasm.put(wBytes);
        const xPtr = wasm.put(xBytes);
        const expected: number[] = [];
        for (let r = 0; r < nRows; r++) {
          const row = wBytes.subarray(r * rb, (r + 1) * rb);
          const ref = format.reference.dot(row, xBytes, cols);
          expected.push(ref);
          const got = wasm.rt.k[format.kernels.dot](wPtr + r * rb, xPtr, cols) as number;
          assert.ok(Math.abs(got - ref) <= 1e-5 * (1 + Math.abs(ref)), `${name} dot row ${r}: ${got} vs ${ref}`);
          // the integer dot is the dot of the decoded operands (up to float rounding of the products)
          const wDec = referenceDequantize(format, row, cols);
          const xDec = referenceDequantize(getFormat(format.dotPartner), xBytes, cols);
          let decoded = 0;
          let magnitude = 0;
          for (let j = 0; j < cols; j++) {
            decoded += wDec[j] * xDec[j];
            magnitude += Math.abs(wDec[j] * xDec[j]);
          }
          if (format.dotPartner === "q8_1") {
            // q5_1's minimum meets q8_1's stored s = fp16(d_y·Σ q_y) instead of the decoded Σ x: swap those terms
            for (let b = 0; b < cols / 32; b++) {
              const m = readF16(row, b * format.bytesPerBlock + 2);
              const s = readF16(xBytes, b * 36 + 2);
              let blockSum = 0;
              for (let j = b * 32; j < b * 32 + 32; j++) blockSum += xDec[j];
              decoded += m * (s - blockSum);
            }
          }
          assert.ok(Math.abs(ref - decoded) <= 1e-6 * magnitude, `${name} dot row ${r}: ${ref} vs decoded ${decoded}`);
          // against the exact dot of the original floats: errors of independent size rmse·|w|·|x|/sqrt(cols); 5 sigma
          let exact = 0;
          let ww = 0;
          let xx = 0;
          for (let j = 0; j < cols; j++) {
            exact += w[r * cols + j] * x[j];
            ww += w[r * cols + j] ** 2;
            xx += x[j] ** 2;
          }
          const bound = (5 * (REL_RMSE_BOUND[name] + 0.006) * Math.sqrt(ww * xx)) / Math.sqrt(cols);
          assert.ok(Math.abs(ref - exact) <= bound, `${name} dot row ${r} vs float: ${ref} vs ${exact} (bound ${bound})`);
        }
        // a sub-range of rows: only out[rowStart..rowEnd) is written
        const out = wasm.put(new Float32Array(nRows).fill(-999));
        wasm.rt.k[format.kernels.matvec](wPtr, xPtr, out, 2, 7, cols);
        const got = wasm.rt.f32(out, nRows).slice();
        for (let r = 0; r < nRows; r++) {
          if (r < 2 || r >= 7) assert.equal(got[r], -999, `${name} matvec wrote row ${r} outside [2, 7)`);
          else assert.ok(Math.abs(got[r] - expected[r]) <= 1e-5 * (1 + Math.abs(expected[r])), `${name} matvec row ${r}`);
        }
      } finally {
        wasm.freeAll();
      }
    });
  });

  describe(`${name} error bounds`, () => {
    it("relative RMS error on Gaussian rows stays under its bound", () => {
      const x = gaussianRow(32 * 1024, 5, 1);
      const y = referenceDequantize(format, referenceQuantize(format, x), x.length);
      let err = 0;
      let sig = 0;
      for (let i = 0; i < x.length; i++) {
        err += (x[i] - y[i]) ** 2;
        sig += x[i] ** 2;
      }
      assert.ok(Math.sqrt(err / sig) <= REL_RMSE_BOUND[name], `${name}: relative RMSE ${Math.sqrt(err / sig)}`);
    });

    it("round trip error stays within the format's step", () => {
      for (const [i, x] of rows.slice(0, 5).entries()) {
        const bytes = referenceQuantize(format, x);
        const y = referenceDequantize(format, bytes, x.length);
        for (let b = 0; b < x.length / 32; b++) {
          const xb = x.subarray(b * 32, b * 32 + 32);
          const amax = Math.max(...xb.map(Math.abs));
          const range = Math.max(...xb) - Math.min(...xb);
          const d = Math.abs(readF16(bytes, b * format.bytesPerBlock));
          for (let j = 0; j < 32; j++) {
            const err = Math.abs(y[b * 32 + j] - xb[j]);
            // q5_0: half a step of d = amax/16, or a whole step for values clamped at q = 31; q5_1: half a step of (max − min)/31 plus fp16 rounding of d and m;
            // iq4_nl: the widest gap between levels (24 at the ends) is at most 12·d
            const bound = name === "q5_0" ? d + 1e-3 * amax : name === "q5_1" ? 0.5 * d + 1e-2 * range : 12.5 * d;
            assert.ok(err <= bound, `${name} row ${i} value ${b * 32 + j}: |${y[b * 32 + j]} − ${xb[j]}| > ${bound}`);
          }
        }
      }
    });
  });
}
