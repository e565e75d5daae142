/**
 * q8_0 (GGML type 8): blocks of 32 values, 34 bytes each:
 *   bytes 0..1  d, fp16 scale = amax / 127 (amax = largest |x| in the block)
 *   bytes 2..33 qs, 32 × int8, q = roundf(x * (1 / d)) with d and 1/d kept in float (not the fp16 d)
 * value = q × fp16(d). Reference: ggml quantize_row_q8_0_ref (the CPU backend's AVX quantizer rounds ties
 * to even and uses 127 / amax instead; see test/helpers/ggml-oracle.ts).
 */
import type { BlockFormat } from "../types.js";
import { kernelNames, tiledKernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, roundHalfAwayFromZero, writeF16 } from "./scalar.js";

export const Q8_BLOCK = 32;
const BYTES = 34;

/**
 * Quantize the 32 floats at src[srcStart..] into int8 at dst[qsStart..] the way both q8_0 and q8_1 do.
 * Returns the float scale d (before fp16 rounding) and the sum of the int8 values.
 */
export function quantizeQ8Block(src: Float32Array, srcStart: number, dst: Uint8Array, qsStart: number): { d: number; sum: number } {
  let amax = 0;
  for (let j = 0; j < Q8_BLOCK; j++) amax = Math.max(amax, Math.abs(src[srcStart + j]));
  const d = Math.fround(amax / 127);
  const id = d !== 0 ? Math.fround(1 / d) : 0;
  let sum = 0;
  for (let j = 0; j < Q8_BLOCK; j++) {
    const q = roundHalfAwayFromZero(Math.fround(src[srcStart + j] * id));
    dst[qsStart + j] = q & 0xff;
    sum += q;
  }
  return { d, sum };
}

/** The int8 at `offset`. */
export function readI8(bytes: Uint8Array, offset: number): number {
  return (bytes[offset] << 24) >> 24;
}

export const q8_0: BlockFormat = {
  name: "q8_0",
  ggmlType: 8,
  blockSize: Q8_BLOCK,
  bytesPerBlock: BYTES,
  dotPartner: "q8_0",
  kv: true,
  weight: true,
  kernels: kernelNames("q8_0"),
  // assembly/formats/q8_0_x4.ts: against the input split into x⁺ and x⁻ (32 + 32 bytes) and its scale as f32, or
  // (offset weights, where the engine's relaxed dot allows) x itself and −128 × Σ x in the same 68 bytes
  tiled: tiledKernelNames("q8_0", { quantizeRows: "quantizeRowsSplit_q8_0", bytesPerBlock: 68 }, "offsetWeights_q8_0_x4"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q8_0", src.length, Q8_BLOCK);
      checkBytes("q8_0", "dst", dst.length, nb * BYTES);
      for (let b = 0; b < nb; b++) {
        const { d } = quantizeQ8Block(src, b * Q8_BLOCK, dst, b * BYTES + 2);
        writeF16(dst, b * BYTES, d);
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      const nb = checkWholeBlocks("q8_0", dst.length, Q8_BLOCK);
      checkBytes("q8_0", "src", src.length, nb * BYTES);
      for (let b = 0; b < nb; b++) {
        const d = readF16(src, b * BYTES);
        for (let j = 0; j < Q8_BLOCK; j++) dst[b * Q8_BLOCK + j] = readI8(src, b * BYTES + 2 + j) * d;
      }
    },
    /** ggml_vec_dot_q8_0_q8_0: per block sumi × float(dx × dy); blocks summed in double. */
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      const nb = checkWholeBlocks("q8_0", n, Q8_BLOCK);
      checkBytes("q8_0", "row", row.length, nb * BYTES);
      checkBytes("q8_0", "x", x.length, nb * BYTES);
      let sum = 0;
      for (let b = 0; b < nb; b++) {
        let sumi = 0;
        for (let j = 0; j < Q8_BLOCK; j++) sumi += readI8(row, b * BYTES + 2 + j) * readI8(x, b * BYTES + 2 + j);
        sum += Math.fround(sumi * Math.fround(readF16(row, b * BYTES) * readF16(x, b * BYTES)));
      }
      return sum;
    },
  },
};
