/**
 * The 16-bit float formats' references (f16, bf16): one value per 2-byte element, converted by the format's own
 * pair of bit conversions; the dot widens each pair to float and sums the float products in double, as ggml's scalar
 * ggml_vec_dot_f16 / ggml_vec_dot_bf16 do.
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, readU16, writeU16 } from "./scalar.js";

export interface HalfFloatBits {
  name: "f16" | "bf16";
  ggmlType: number;
  /** f32 → the format's 16 bits, rounded to nearest even. */
  fromF32(value: number): number;
  /** The format's 16 bits → their f32 value. */
  toF32(bits: number): number;
}

export function halfFloatFormat({ name, ggmlType, fromF32, toF32 }: HalfFloatBits): BlockFormat {
  return {
    name,
    ggmlType,
    blockSize: 1,
    bytesPerBlock: 2,
    dotPartner: name,
    kv: true,
    weight: true,
    kernels: kernelNames(name),
    reference: {
      quantizeRow(src: Float32Array, dst: Uint8Array): void {
        checkBytes(name, "dst", dst.length, src.length * 2);
        for (let i = 0; i < src.length; i++) writeU16(dst, 2 * i, fromF32(src[i]));
      },
      dequantizeRow(src: Uint8Array, dst: Float32Array): void {
        checkBytes(name, "src", src.length, dst.length * 2);
        for (let i = 0; i < dst.length; i++) dst[i] = toF32(readU16(src, 2 * i));
      },
      dot(row: Uint8Array, x: Uint8Array, n: number): number {
        checkBytes(name, "row", row.length, n * 2);
        checkBytes(name, "x", x.length, n * 2);
        let sum = 0;
        for (let i = 0; i < n; i++) sum += Math.fround(toF32(readU16(row, 2 * i)) * toF32(readU16(x, 2 * i)));
        return sum;
      },
    },
  };
}
