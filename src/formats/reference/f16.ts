/** f16: IEEE binary16 (GGML type 1), rounded to nearest even as GGML_FP32_TO_FP16. */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, f16BitsToF32, f32ToF16Bits, readU16, writeU16 } from "./scalar.js";

export const f16: BlockFormat = {
  name: "f16",
  ggmlType: 1,
  blockSize: 1,
  bytesPerBlock: 2,
  dotPartner: "f16",
  kv: true,
  weight: true,
  kernels: kernelNames("f16"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      checkBytes("f16", "dst", dst.length, src.length * 2);
      for (let i = 0; i < src.length; i++) writeU16(dst, 2 * i, f32ToF16Bits(src[i]));
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      checkBytes("f16", "src", src.length, dst.length * 2);
      for (let i = 0; i < dst.length; i++) dst[i] = f16BitsToF32(readU16(src, 2 * i));
    },
    /** ggml_vec_dot_f16 (scalar form): each pair widened to float, float products summed in double. */
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      checkBytes("f16", "row", row.length, n * 2);
      checkBytes("f16", "x", x.length, n * 2);
      let sum = 0;
      for (let i = 0; i < n; i++) sum += Math.fround(f16BitsToF32(readU16(row, 2 * i)) * f16BitsToF32(readU16(x, 2 * i)));
      return sum;
    },
  },
};
