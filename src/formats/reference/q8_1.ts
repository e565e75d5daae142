/**
 * q8_1 (GGML type 9): the activation partner of q4_1 / q5_1 dots; blocks of 32 values, 36 bytes each:
 *   bytes 0..1  d, fp16 scale = amax / 127
 *   bytes 2..3  s, fp16 of float(sum of the 32 int8 values) × d (d the float scale, before fp16 rounding)
 *   bytes 4..35 qs, 32 × int8 quantized exactly as q8_0
 * value = q × fp16(d). Reference: ggml quantize_row_q8_1_ref. Not a storage format: kv and weight are false,
 * and it has no dot/axpy/matvec kernels of its own.
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, f32ToF16Bits, readF16, writeF16, writeU16 } from "./scalar.js";
import { Q8_BLOCK, quantizeQ8Block, readI8 } from "./q8_0.js";

const BYTES = 36;

export const q8_1: BlockFormat = {
  name: "q8_1",
  ggmlType: 9,
  blockSize: Q8_BLOCK,
  bytesPerBlock: BYTES,
  dotPartner: "q8_1",
  kv: false,
  weight: false,
  kernels: kernelNames("q8_1"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q8_1", src.length, Q8_BLOCK);
      checkBytes("q8_1", "dst", dst.length, nb * BYTES);
      for (let b = 0; b < nb; b++) {
        const { d, sum } = quantizeQ8Block(src, b * Q8_BLOCK, dst, b * BYTES + 4);
        writeF16(dst, b * BYTES, d);
        writeU16(dst, b * BYTES + 2, f32ToF16Bits(Math.fround(sum * d)));
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      const nb = checkWholeBlocks("q8_1", dst.length, Q8_BLOCK);
      checkBytes("q8_1", "src", src.length, nb * BYTES);
      for (let b = 0; b < nb; b++) {
        const d = readF16(src, b * BYTES);
        for (let j = 0; j < Q8_BLOCK; j++) dst[b * Q8_BLOCK + j] = readI8(src, b * BYTES + 4 + j) * d;
      }
    },
    dot(): number {
      throw new Error("q8_1 is only a dot partner (of q4_1 and q5_1); it has no dot of its own");
    },
  },
};
