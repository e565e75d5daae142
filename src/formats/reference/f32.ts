/** f32: plain little-endian IEEE binary32 values (GGML type 0). */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { bytesAsF32, checkBytes } from "./scalar.js";

export const f32: BlockFormat = {
  name: "f32",
  ggmlType: 0,
  blockSize: 1,
  bytesPerBlock: 4,
  dotPartner: "f32",
  kv: true,
  weight: true,
  kernels: kernelNames("f32"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      checkBytes("f32", "dst", dst.length, src.length * 4);
      new Uint8Array(dst.buffer, dst.byteOffset, src.length * 4).set(new Uint8Array(src.buffer, src.byteOffset, src.length * 4));
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      checkBytes("f32", "src", src.length, dst.length * 4);
      dst.set(bytesAsF32(src, dst.length));
    },
    /** ggml_vec_dot_f32 (scalar form): float products summed in double. */
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      checkBytes("f32", "row", row.length, n * 4);
      checkBytes("f32", "x", x.length, n * 4);
      const a = bytesAsF32(row, n); // (n)
      const b = bytesAsF32(x, n); // (n)
      let sum = 0;
      for (let i = 0; i < n; i++) sum += Math.fround(a[i] * b[i]);
      return sum;
    },
  },
};
