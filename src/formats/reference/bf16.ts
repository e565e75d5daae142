/** bf16: bfloat16, the top half of a binary32 (GGML type 30), rounded to nearest even as GGML_FP32_TO_BF16. */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, bf16BitsToF32, f32ToBf16Bits, readU16, writeU16 } from "./scalar.js";

export const bf16: BlockFormat = {
  name: "bf16",
  ggmlType: 30,
  blockSize: 1,
  bytesPerBlock: 2,
  dotPartner: "bf16",
  kv: true,
  weight: true,
  kernels: kernelNames("bf16"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      checkBytes("bf16", "dst", dst.length, src.length * 2);
      for (let i = 0; i < src.length; i++) writeU16(dst, 2 * i, f32ToBf16Bits(src[i]));
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      checkBytes("bf16", "src", src.length, dst.length * 2);
      for (let i = 0; i < dst.length; i++) dst[i] = bf16BitsToF32(readU16(src, 2 * i));
    },
    /** ggml_vec_dot_bf16 (scalar form): each pair widened to float, float products summed in double. */
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      checkBytes("bf16", "row", row.length, n * 2);
      checkBytes("bf16", "x", x.length, n * 2);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += Math.fround(bf16BitsToF32(readU16(row, 2 * i)) * bf16BitsToF32(readU16(x, 2 * i)));
      return sum;
    },
  },
};
