/**
 * Batched weight kernels matmul_<fmt> (prompt processing) for every weight format:
 *   1. equal matvec_<fmt> run token by token, bit for bit (so batched and token-by-token runs give the same logits);
 *   2. within the same bound of the scalar reference dot that formats.test.ts uses for matvec;
 *   3. only out[t][rowStart, rowEnd) is written, with strides wider than the rows.
 * Sizes: 1, 3 and 9 tokens; 1 row and row ranges; cols of one block, of a partial group of four blocks, and of many.
 * matmulWide_<fmt> (the wide layouts of assembly/formats/matmul-wide.ts: int16 in the plain build, int8 with the
 * signs moved onto x in the relaxed one; and the widened K-quant rows of matmul-wide-k.ts) equals matvec_<fmt> bit
 * for bit the same way, q8_0 weight rows holding −128 included, and widenRows_q8_0 writes the layout a scalar
 * re-implementation of its description gives for the build in use.
 * Also: the f16 vector decode (exponent rebias) equals the reference for all 65536 halves, inf and NaN included, and
 * so do the block and super-block scales (q8_0 d through the scalar decode; q4_K d and dmin through the vector decode
 * without subnormal operands, in the row and the tiled kernels).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { FORMATS, getFormat, rowBytes } from "../../src/formats/table.js";
import { TILE_GROUP_ROWS, type BlockFormat } from "../../src/formats/types.js";
import { defaultRuntime, kernelVariant } from "../../src/runtime/wasm.js";
import { f16BitsToF32 } from "../../src/formats/reference/scalar.js";
import { q8KInQuadOrder } from "../helpers/quad-order.js";

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Gaussian values with a different power-of-two scale every 32 values (2^-12 .. 2^9). */
function values(n: number, seed: number): Float32Array {
  const rand = prng(seed);
  const out = new Float32Array(n); // (n)
  let scale = 1;
  for (let i = 0; i < n; i++) {
    if (i % 32 === 0) scale = 2 ** Math.floor(rand() * 22 - 12);
    out[i] = scale * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

function quantize(format: BlockFormat, x: Float32Array): Uint8Array {
  const out = new Uint8Array(rowBytes(format, x.length)); // (rowBytes)
  format.reference.quantizeRow(x, out);
  return out;
}

function dequantize(format: BlockFormat, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n); // (n)
  format.reference.dequantizeRow(bytes, out);
  return out;
}

/** formats.test.ts's matvec bound: k · 2^-23 · Σ (|a| + max|a| in a's block) |b|, k = ceil(n / max(block, 4)) + 10. */
function dotTolerance(format: BlockFormat, n: number, a: Float32Array, b: Float32Array): number {
  let magnitude = 0;
  for (let s = 0; s < n; s += format.blockSize) {
    let amax = 0;
    for (let j = s; j < s + format.blockSize; j++) amax = Math.max(amax, Math.abs(a[j]));
    for (let j = s; j < s + format.blockSize; j++) magnitude += (Math.abs(a[j]) + amax) * Math.abs(b[j]);
  }
  return (Math.ceil(n / Math.max(format.blockSize, 4)) + 10) * 2 ** -23 * magnitude + 1e-30;
}

function colsFor(format: BlockFormat): number[] {
  // blocks: 1, 3 (a partial group only), 4, 9 (groups + a tail), 64; float formats: odd counts and steps of 8 + tail
  return format.blockSize === 1 ? [1, 7, 8, 13, 64, 203] : [1, 3, 4, 9, 64].map((b) => b * format.blockSize);
}

const weightFormats = FORMATS.filter((f) => f.weight);
const SENTINEL = -7777.25;

describe("matmul_<fmt> equals matvec_<fmt> per token bit for bit, and the scalar reference within its bound", () => {
  const rt = defaultRuntime();

  for (const format of weightFormats) {
    const partner = getFormat(format.dotPartner);
    it(`${format.name} (x in ${partner.name})`, () => {
      assert.equal(typeof rt.k[format.kernels.matmul], "function", `missing export ${format.kernels.matmul}`);
      const nRows = 7;
      const maxTokens = 9;
      for (const cols of colsFor(format)) {
        const wBytes = rowBytes(format, cols);
        const xBytes = rowBytes(partner, cols);
        const xStride = xBytes + 36; // rows of x and out further apart than their length: strides must be honoured
        const outStride = nRows * 4 + 12;
        const w = new Uint8Array(nRows * wBytes); // (nRows, wBytes)
        for (let r = 0; r < nRows; r++) w.set(quantize(format, values(cols, 100 * r + cols)), r * wBytes);
        const x = new Uint8Array(maxTokens * xStride); // (maxTokens, xStride)
        for (let t = 0; t < maxTokens; t++) x.set(quantize(partner, values(cols, 7000 + 31 * t + cols)), t * xStride);
        const wPtr = rt.alloc(w.length);
        const xPtr = rt.alloc(x.length);
        const outPtr = rt.alloc(maxTokens * outStride); // (maxTokens, outStride bytes)
        const vecPtr = rt.alloc(nRows * 4); // (nRows)
        try {
          rt.u8(wPtr, w.length).set(w);
          rt.u8(xPtr, x.length).set(x);
          for (const nTokens of [1, 3, 9]) {
            for (const [rowStart, rowEnd] of [[0, nRows], [2, 3], [1, 6], [6, 7]]) {
              rt.f32(outPtr, (maxTokens * outStride) / 4).fill(SENTINEL);
              rt.k[format.kernels.matmul](wPtr, xPtr, outPtr, rowStart, rowEnd, cols, nTokens, xStride, outStride);
              const out = new Float32Array(rt.memory.buffer.slice(outPtr, outPtr + maxTokens * outStride)); // (maxTokens, outStride / 4)
              const where = `${format.name} cols=${cols} tokens=${nTokens} rows [${rowStart},${rowEnd})`;
              for (let t = 0; t < maxTokens; t++) {
                const o = (t * outStride) / 4;
                if (t >= nTokens) {
                  for (let i = 0; i < outStride / 4; i++) assert.equal(out[o + i], SENTINEL, `${where}: token ${t} was written`);
                  continue;
                }
                rt.f32(vecPtr, nRows).fill(SENTINEL);
                rt.k[format.kernels.matvec](wPtr, xPtr + t * xStride, vecPtr, rowStart, rowEnd, cols);
                const vec = rt.f32(vecPtr, nRows).slice();
                const xRow = x.subarray(t * xStride, t * xStride + xBytes);
                const xValues = dequantize(partner, xRow, cols);
                for (let r = 0; r < outStride / 4; r++) {
                  if (r < rowStart || r >= rowEnd) {
                    assert.equal(out[o + r], SENTINEL, `${where}: out[${t}][${r}] outside the rows was written`);
                    continue;
                  }
                  assert.ok(Object.is(out[o + r], vec[r]), `${where}: out[${t}][${r}] = ${out[o + r]} but matvec gives ${vec[r]}`);
                  const rowQ = w.subarray(r * wBytes, (r + 1) * wBytes);
                  const want = format.reference.dot(rowQ, xRow, cols);
                  const tol = dotTolerance(format, cols, dequantize(format, rowQ, cols), xValues);
                  assert.ok(Math.abs(out[o + r] - want) <= tol, `${where}: out[${t}][${r}] = ${out[o + r]} vs reference ${want} (tolerance ${tol})`);
                }
              }
            }
          }
        } finally {
          rt.free(wPtr);
          rt.free(xPtr);
          rt.free(outPtr);
          rt.free(vecPtr);
        }
      }
    });
  }

  it("an empty row range or zero tokens writes nothing", () => {
    const format = getFormat("q8_0");
    const cols = 64;
    const wPtr = rt.alloc(rowBytes(format, cols) * 2);
    const xPtr = rt.alloc(rowBytes(format, cols));
    const outPtr = rt.alloc(16);
    try {
      rt.u8(wPtr, rowBytes(format, cols) * 2).fill(1);
      rt.u8(xPtr, rowBytes(format, cols)).fill(1);
      rt.f32(outPtr, 4).fill(SENTINEL);
      rt.k.matmul_q8_0(wPtr, xPtr, outPtr, 1, 1, cols, 1, 0, 8);
      rt.k.matmul_q8_0(wPtr, xPtr, outPtr, 0, 2, cols, 0, 0, 8);
      rt.k.matvec_q8_0(wPtr, xPtr, outPtr, 2, 2, cols);
      assert.deepEqual(Array.from(rt.f32(outPtr, 4)), [SENTINEL, SENTINEL, SENTINEL, SENTINEL]);
    } finally {
      rt.free(wPtr);
      rt.free(xPtr);
      rt.free(outPtr);
    }
  });

  it("f16 weights decode exactly for all 65536 halves (subnormals, inf, NaN) through matvec_f16", () => {
    // row r = one half h = r, x = 1.0: out[r] is the half's value (NaN stays NaN; inf × 1 = inf)
    const n = 65536;
    const wPtr = rt.alloc(n * 2);
    const xPtr = rt.alloc(2);
    const outPtr = rt.alloc(n * 4);
    try {
      const halves = rt.u16(wPtr, n);
      for (let h = 0; h < n; h++) halves[h] = h;
      rt.u16(xPtr, 1)[0] = 0x3c00; // 1.0
      rt.k.matvec_f16(wPtr, xPtr, outPtr, 0, n, 1);
      const out = rt.f32(outPtr, n);
      for (let h = 0; h < n; h++) {
        const want = f16BitsToF32(h);
        assert.ok(Number.isNaN(want) ? Number.isNaN(out[h]) : out[h] === want, `half 0x${h.toString(16)}: ${out[h]} vs ${want}`);
      }
      // and the eight-wide vector path: rows of 8 halves against x = (1, 0, ..., 0) picks lane 0, then lane k
      const rows = n / 8;
      const xs = rt.alloc(16);
      const outs = rt.alloc(rows * 4);
      try {
        for (let lane = 0; lane < 8; lane++) {
          const x = rt.u16(xs, 8);
          x.fill(0);
          x[lane] = 0x3c00;
          rt.k.matvec_f16(wPtr, xs, outs, 0, rows, 8);
          const got = rt.f32(outs, rows);
          for (let r = 0; r < rows; r++) {
            const h = r * 8 + lane;
            const want = f16BitsToF32(h);
            // Σ of one value and seven (±0 or NaN/inf) × 0 products: compare only where the others are finite
            let othersFinite = true;
            for (let j = 0; j < 8; j++) if (j !== lane && !Number.isFinite(f16BitsToF32(r * 8 + j))) othersFinite = false;
            if (!othersFinite) continue;
            assert.ok(Number.isNaN(want) ? Number.isNaN(got[r]) : got[r] === want, `vector lane ${lane}, half 0x${h.toString(16)}: ${got[r]} vs ${want}`);
          }
        }
      } finally {
        rt.free(xs);
        rt.free(outs);
      }
    } finally {
      rt.free(wPtr);
      rt.free(xPtr);
      rt.free(outPtr);
    }
  });

  it("fp16 scales decode exactly for all 65536 halves: q8_0 block d (scalar path), q4_K d and dmin (row and tiled kernels)", () => {
    const n = 65536;
    const want = (h: number) => f16BitsToF32(h);
    const same = (got: number, expected: number, what: string) =>
      assert.ok(Number.isNaN(expected) ? Number.isNaN(got) : got === expected, `${what}: ${got} vs ${expected}`);
    // q8_0: block h has d = h and every value 1, so dequantizeRow_q8_0 writes 1 × d = d (32 times)
    const q8 = rt.alloc(n * 34);
    const deq = rt.alloc(n * 32 * 4);
    try {
      const bytes = rt.u8(q8, n * 34);
      for (let h = 0; h < n; h++) {
        bytes[34 * h] = h & 255;
        bytes[34 * h + 1] = h >> 8;
        bytes.fill(1, 34 * h + 2, 34 * h + 34);
      }
      rt.k.dequantizeRow_q8_0(q8, deq, n * 32);
      const out = rt.f32(deq, n * 32);
      for (let h = 0; h < n; h++) same(out[32 * h + 31], want(h), `q8_0 d 0x${h.toString(16)}`);
    } finally {
      rt.free(q8);
      rt.free(deq);
    }
    // q4_K: row h (one super-block) has scale_0 = min_0 = 1, level 1 at value 0 and 0 elsewhere; x (q8_K) has d = 1,
    // q8 = 1 at value 0 and bsum_0 = 1, so dot = (1 × d) × 1 − (1 × dmin) × 1. With dmin = 0 it is d; with d = 0, −dmin.
    const q4 = getFormat("q4_K");
    const w = rt.alloc(n * 144);
    const x = rt.alloc(292);
    const dots = rt.alloc(n * 4);
    const scratch = rt.alloc(Math.max(TILE_GROUP_ROWS * 144, rt.k.tiledScratchBytes())); // the repack's and the product's
    try {
      const xb = new DataView(rt.u8(x, 292).buffer, x, 292);
      rt.u8(x, 292).fill(0);
      xb.setFloat32(0, 1, true);
      xb.setInt8(4, 1);
      xb.setInt16(260, 1, true);
      for (const side of ["d", "dmin"] as const) {
        const rows = rt.u8(w, n * 144);
        rows.fill(0);
        for (let h = 0; h < n; h++) {
          const o = 144 * h;
          rows[o + (side === "d" ? 0 : 2)] = h & 255;
          rows[o + (side === "d" ? 1 : 3)] = h >> 8;
          rows[o + 4] = 1; // scale_0
          rows[o + 8] = 1; // min_0
          rows[o + 16] = 1; // level 1 at value 0
        }
        const expected = (h: number) => (side === "d" ? want(h) : 0 - want(h));
        for (const layout of ["rows", "tiles"] as const) {
          if (layout === "rows") rt.k.matvec_q4_K(w, x, dots, 0, n, 256);
          else {
            rt.k[q4.tiled!.repack](w, n, 256, scratch);
            rt.k[q4.tiled!.matvec](w, x, dots, 0, n, 256, scratch);
          }
          const out = rt.f32(dots, n);
          for (let h = 0; h < n; h++) same(out[h], expected(h), `q4_K ${side} 0x${h.toString(16)} (${layout})`);
        }
      }
    } finally {
      rt.free(w);
      rt.free(x);
      rt.free(dots);
      rt.free(scratch);
    }
  });
});

/**
 * Scalar re-statement of the wide partner layout of the build in use: (nRows, ceil(blocks / 4) × 272 bytes) of q8_0
 * rows. Plain: int16 values, pairs of one block per i32 lane; relaxed: int8 values, fours of one block per i32 lane,
 * then their negations.
 */
function widenReference(q8: Uint8Array, nRows: number, cols: number): Uint8Array {
  const int8 = kernelVariant() === "relaxed";
  const nb = cols / 32;
  const nGroups = Math.ceil(nb / 4);
  const out = new Uint8Array(nRows * nGroups * 272); // (nRows, nGroups, 272)
  const view = new DataView(out.buffer);
  const src = new DataView(q8.buffer, q8.byteOffset, q8.byteLength);
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const block = (r * nb + b) * 34;
      const group = (r * nGroups + Math.floor(b / 4)) * 272;
      const lane = b % 4;
      for (let j = 0; j < 32; j++) {
        const v = src.getInt8(block + 2 + j);
        if (!int8) {
          view.setInt16(group + 16 * (j >> 1) + 4 * lane + 2 * (j & 1), v, true);
          continue;
        }
        const at = group + 16 * (j >> 2) + 4 * lane + (j & 3);
        view.setInt8(at, v);
        view.setInt8(at + 128, -v);
      }
      view.setFloat32(group + 256 + 4 * lane, f16BitsToF32(src.getUint16(block, true)), true);
    }
  }
  return out;
}

/**
 * matmulWide_<name>(w, wideX, out, rowStart, rowEnd, cols, nTokens, outStride, scratch) against matvec_<fmt> token by
 * token, bit for bit, for several token counts and row ranges: W = nRows quantized rows at wPtr, the partner rows at
 * xPtr ((maxTokens, xBytes)) and the same tokens as the wide kernel reads them at wideX. Rows outside the range and
 * tokens past nTokens must stay untouched.
 */
function assertWideEqualsMatvec(
  rt: ReturnType<typeof defaultRuntime>, format: BlockFormat, m: { wPtr: number; nRows: number; xPtr: number; xBytes: number; wideX: number; maxTokens: number; cols: number; scratch: number },
  tokenCounts: readonly number[],
): void {
  const { wPtr, nRows, xPtr, xBytes, wideX, maxTokens, cols, scratch } = m;
  const outStride = nRows * 4 + 12;
  const outPtr = rt.alloc(maxTokens * outStride); // (maxTokens, outStride bytes)
  const vecPtr = rt.alloc(nRows * 4); // (nRows)
  try {
    for (const nTokens of tokenCounts) {
      for (const [rowStart, rowEnd] of [[0, nRows], [2, 3], [1, 6], [6, 7], [3, 3]]) {
        rt.f32(outPtr, (maxTokens * outStride) / 4).fill(SENTINEL);
        rt.k[`matmulWide_${format.name}`](wPtr, wideX, outPtr, rowStart, rowEnd, cols, nTokens, outStride, scratch);
        const out = new Float32Array(rt.memory.buffer.slice(outPtr, outPtr + maxTokens * outStride)); // (maxTokens, outStride / 4)
        const where = `${format.name} cols=${cols} tokens=${nTokens} rows [${rowStart},${rowEnd})`;
        for (let t = 0; t < maxTokens; t++) {
          const o = (t * outStride) / 4;
          rt.f32(vecPtr, nRows).fill(SENTINEL);
          if (t < nTokens) rt.k[format.kernels.matvec](wPtr, xPtr + t * xBytes, vecPtr, rowStart, rowEnd, cols);
          const vec = rt.f32(vecPtr, nRows).slice();
          for (let r = 0; r < outStride / 4; r++) {
            const want = r < nRows ? vec[r] : SENTINEL; // matvec of rows outside the range (or tokens past nTokens) writes nothing either
            assert.ok(Object.is(out[o + r], want), `${where}: out[${t}][${r}] = ${out[o + r]} but matvec gives ${want}`);
          }
        }
      }
    }
  } finally {
    rt.free(outPtr);
    rt.free(vecPtr);
  }
}

describe("matmulWide_<fmt> over the wide layout equals matvec_<fmt> per token bit for bit", () => {
  const rt = defaultRuntime();
  const wideRow = (cols: number) => Math.ceil(cols / 32 / 4) * 272;
  const q8 = getFormat("q8_0");

  it("widenRows_q8_0 writes the documented layout (zeros and scale 0 past the last block)", () => {
    for (const cols of [32, 96, 128, 288]) {
      const nRows = 3;
      const x = new Uint8Array(nRows * rowBytes(q8, cols)); // (nRows, q8_0 row bytes)
      for (let t = 0; t < nRows; t++) x.set(quantize(q8, values(cols, 40 + t + cols)), t * rowBytes(q8, cols));
      const xPtr = rt.alloc(x.length);
      const wPtr = rt.alloc(nRows * wideRow(cols));
      try {
        rt.u8(xPtr, x.length).set(x);
        rt.u8(wPtr, nRows * wideRow(cols)).fill(0xa5);
        rt.k.widenRows_q8_0(xPtr, wPtr, nRows, cols);
        assert.deepEqual(rt.u8(wPtr, nRows * wideRow(cols)).slice(), widenReference(x, nRows, cols), `cols=${cols}`);
      } finally {
        rt.free(xPtr);
        rt.free(wPtr);
      }
    }
  });

  it("quantizeRowsWide_q8_0 writes rows [start, end) as quantizeRow_q8_0 then widenRows_q8_0 do, and nothing else", () => {
    const cols = 288;
    const nRows = 5;
    const q8Bytes = rowBytes(q8, cols);
    const xPtr = rt.alloc(nRows * cols * 4); // f32 (nRows, cols)
    const q8Ptr = rt.alloc(nRows * q8Bytes); // (nRows, q8Bytes)
    const widePtr = rt.alloc(nRows * wideRow(cols)); // (nRows, wideRow)
    try {
      const x = values(nRows * cols, 77);
      rt.f32(xPtr, nRows * cols).set(x);
      rt.u8(q8Ptr, nRows * q8Bytes).fill(0x5a);
      rt.u8(widePtr, nRows * wideRow(cols)).fill(0x5a);
      rt.k.quantizeRowsWide_q8_0(xPtr, q8Ptr, widePtr, 1, 4, cols);
      const wantQ8 = new Uint8Array(nRows * q8Bytes).fill(0x5a);
      for (let r = 1; r < 4; r++) wantQ8.set(quantize(q8, x.subarray(r * cols, (r + 1) * cols)), r * q8Bytes);
      assert.deepEqual(rt.u8(q8Ptr, nRows * q8Bytes).slice(), wantQ8);
      const wantWide = new Uint8Array(nRows * wideRow(cols)).fill(0x5a);
      wantWide.set(widenReference(wantQ8.subarray(q8Bytes, 4 * q8Bytes), 3, cols), wideRow(cols));
      assert.deepEqual(rt.u8(widePtr, nRows * wideRow(cols)).slice(), wantWide);
    } finally {
      for (const p of [xPtr, q8Ptr, widePtr]) rt.free(p);
    }
  });

  for (const name of ["q8_0", "q4_0", "q5_0", "iq4_nl"] as const) {
    const format = getFormat(name);
    it(`${name}: 1..9 tokens, odd row ranges, cols of 1, 3, 4, 9, 64 blocks${name === "q8_0" ? ", rows holding −128" : ""}`, () => {
      assert.equal(format.dotPartner, "q8_0");
      const nRows = 7;
      const maxTokens = 9;
      for (const cols of [1, 3, 4, 9, 64].map((b) => b * 32)) {
        const wBytes = rowBytes(format, cols);
        const xBytes = rowBytes(q8, cols);
        const w = new Uint8Array(nRows * wBytes); // (nRows, wBytes)
        for (let r = 0; r < nRows; r++) w.set(quantize(format, values(cols, 300 * r + cols)), r * wBytes);
        // q8_0 values of −128 (quantizeRow_q8_0 never writes one; a file may): in row 3's last block and row 4's
        // first, so rows (2, 3) and (4, 5) take the relaxed build's signed path and row 6 the int8 one
        if (name === "q8_0") for (const [r, at] of [[3, wBytes - 1], [4, 2 + 5]]) w[r * wBytes + at] = 0x80;
        const x = new Uint8Array(maxTokens * xBytes); // (maxTokens, xBytes)
        for (let t = 0; t < maxTokens; t++) x.set(quantize(q8, values(cols, 9000 + 17 * t + cols)), t * xBytes);
        const wPtr = rt.alloc(w.length);
        const xPtr = rt.alloc(x.length);
        const widePtr = rt.alloc(maxTokens * wideRow(cols)); // (maxTokens, wideRow)
        const scratch = rt.alloc(2 * wideRow(cols));
        try {
          rt.u8(wPtr, w.length).set(w);
          rt.u8(xPtr, x.length).set(x);
          rt.k.widenRows_q8_0(xPtr, widePtr, maxTokens, cols);
          assertWideEqualsMatvec(rt, format, { wPtr, nRows, xPtr, xBytes, wideX: widePtr, maxTokens, cols, scratch }, [1, 2, 3, 4, 5, 9]);
        } finally {
          for (const p of [wPtr, xPtr, widePtr, scratch]) rt.free(p);
        }
      }
    });
  }
});

describe("matmulWide_<K-quant> (rows widened once per batch) equals matvec_<fmt> per token bit for bit", () => {
  const rt = defaultRuntime();
  const q8K = getFormat("q8_K");
  const wideRowK = (cols: number) => (cols / 256) * 560; // src/model/linear.ts wideRowBytesK

  for (const name of ["q2_K", "q3_K", "q4_K", "q5_K", "q6_K"] as const) {
    const format = getFormat(name);
    it(`${name}: 1..9 tokens, odd row ranges, cols of 1, 2, 9 super-blocks`, () => {
      assert.equal(format.dotPartner, "q8_K");
      const nRows = 7;
      const maxTokens = 9;
      for (const cols of [1, 2, 9].map((b) => b * 256)) {
        const wBytes = rowBytes(format, cols);
        const xBytes = rowBytes(q8K, cols);
        const w = new Uint8Array(nRows * wBytes); // (nRows, wBytes)
        for (let r = 0; r < nRows; r++) w.set(quantize(format, values(cols, 500 * r + cols)), r * wBytes);
        const x = new Uint8Array(maxTokens * xBytes); // (maxTokens, xBytes)
        for (let t = 0; t < maxTokens; t++) x.set(quantize(q8K, values(cols, 7000 + 13 * t + cols)), t * xBytes);
        const wPtr = rt.alloc(w.length);
        const xPtr = rt.alloc(x.length);
        const widePtr = rt.alloc(x.length);
        const scratch = rt.alloc(2 * wideRowK(cols));
        try {
          rt.u8(wPtr, w.length).set(w);
          rt.u8(xPtr, x.length).set(x);
          rt.u8(widePtr, x.length).set(q8KInQuadOrder(x, cols)); // the wide kernels read the q8_K values in quad order
          assertWideEqualsMatvec(rt, format, { wPtr, nRows, xPtr, xBytes, wideX: widePtr, maxTokens, cols, scratch }, [1, 2, 3, 4, 5, 8, 9]);
        } finally {
          for (const p of [wPtr, xPtr, widePtr, scratch]) rt.free(p);
        }
      }
    });
  }

  it("q6_K, q5_K and q3_K at the extremes of their levels and scales (|scale × level| up to 4096) still equal matvec", () => {
    // large values of one sign pattern in the first super-block, tiny ones in the second: levels at the ends of their
    // range with the largest scales, activations of the same signs so the integer sums are as large as they get
    for (const name of ["q6_K", "q3_K", "q5_K"] as const) {
      const format = getFormat(name);
      const cols = 512;
      const nTokens = 4;
      const wRow = new Float32Array(cols).map((_, i) => (i % 3 === 0 ? -1 : 1) * (i < 256 ? 1000 : 0.001) * (1 + (i % 17) / 16));
      const w = quantize(format, wRow);
      const xs = Array.from({ length: nTokens }, (_, t) => quantize(q8K, new Float32Array(cols).map((_, i) => (i % 3 === 0 ? -1 : 1) * (50 + t + (i % 5)))));
      const wPtr = rt.alloc(w.length);
      const xPtr = rt.alloc(nTokens * xs[0].length);
      const widePtr = rt.alloc(nTokens * xs[0].length);
      const scratch = rt.alloc(2 * wideRowK(cols));
      const outPtr = rt.alloc(nTokens * 4);
      const vecPtr = rt.alloc(4);
      try {
        rt.u8(wPtr, w.length).set(w);
        xs.forEach((x, t) => rt.u8(xPtr + t * x.length, x.length).set(x));
        xs.forEach((x, t) => rt.u8(widePtr + t * x.length, x.length).set(q8KInQuadOrder(x, cols)));
        rt.k[`matmulWide_${name}`](wPtr, widePtr, outPtr, 0, 1, cols, nTokens, 4, scratch);
        for (let t = 0; t < nTokens; t++) {
          rt.k[format.kernels.matvec](wPtr, xPtr + t * xs[0].length, vecPtr, 0, 1, cols);
          assert.ok(Object.is(rt.f32(outPtr, nTokens)[t], rt.f32(vecPtr, 1)[0]), `${name} token ${t}`);
          assert.ok(Math.abs(rt.f32(vecPtr, 1)[0]) > 1e5, `${name}: the test row should give a large dot`);
        }
      } finally {
        for (const p of [wPtr, xPtr, widePtr, scratch, outPtr, vecPtr]) rt.free(p);
      }
    }
  });

  // kernel -> what it writes for one row, from the reference q8_K quantizer's bytes
  const q8KRowKernels: [string, (q8: Uint8Array, cols: number) => Uint8Array][] = [
    ["quantizeRows_q8_K", (q8) => q8],
    ["quantizeRowsWide_q8_K", (q8, cols) => q8KInQuadOrder(q8, cols)],
  ];
  for (const [kernel, layout] of q8KRowKernels) {
    it(`${kernel} writes rows [start, end) as the reference q8_K quantizer${kernel.includes("Wide") ? " then the quad order do" : " does"}, and nothing else`, () => {
      for (const cols of [256, 768]) {
        const nRows = 5;
        const xBytes = rowBytes(q8K, cols);
        const floats = new Float32Array(nRows * cols); // (nRows, cols)
        for (let r = 0; r < nRows; r++) floats.set(values(cols, 900 + r), r * cols);
        const srcPtr = rt.alloc(floats.length * 4);
        const dstPtr = rt.alloc(nRows * xBytes);
        try {
          rt.f32(srcPtr, floats.length).set(floats);
          rt.u8(dstPtr, nRows * xBytes).fill(0x5a);
          rt.k[kernel](srcPtr, dstPtr, 1, 4, cols);
          const want = new Uint8Array(nRows * xBytes).fill(0x5a);
          for (let r = 1; r < 4; r++) want.set(layout(quantize(q8K, floats.subarray(r * cols, (r + 1) * cols)), cols), r * xBytes);
          assert.deepEqual(rt.u8(dstPtr, nRows * xBytes).slice(), want, `cols=${cols}`);
        } finally {
          rt.free(srcPtr);
          rt.free(dstPtr);
        }
      }
    });
  }
});
