/**
 * q8_K (GGML type 15): the activation partner of every K-quant dot; 256-value blocks of 292 bytes:
 *   bytes 0..3     d, float32 = 1 / iscale with iscale = −127 / max (max: the first value of largest |x|, sign kept)
 *   bytes 4..259   qs, 256 × int8, q = min(127, nearest_int(iscale × x)) (round half to even, see kquants.ts)
 *   bytes 260..291 bsums, 16 × int16: sums of qs[16j .. 16j + 16)
 * value = d × q. A block of zeros has d = 0, qs = 0 and (here) bsums = 0 (llama.cpp leaves them unwritten).
 * Reference: ggml quantize_row_q8_K_ref (the x86 CPU backend's quantize_row_q8_K is the same function).
 * Not a storage format: kv and weight are false; it has no dot/axpy/matvec kernels of its own.
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks } from "./scalar.js";
import { QK_K, Q8_K_BYTES, fr, nearestInt, q8KQuant, q8KScale } from "./kquants.js";

export const q8_K: BlockFormat = {
  name: "q8_K",
  ggmlType: 15,
  blockSize: QK_K,
  bytesPerBlock: Q8_K_BYTES,
  dotPartner: "q8_K",
  kv: false,
  weight: false,
  kernels: kernelNames("q8_K"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q8_K", src.length, QK_K);
      checkBytes("q8_K", "dst", dst.length, nb * Q8_K_BYTES);
      const view = new DataView(dst.buffer, dst.byteOffset, nb * Q8_K_BYTES);
      for (let b = 0; b < nb; b++) {
        const x0 = b * QK_K;
        const o = b * Q8_K_BYTES;
        let max = 0;
        let amax = 0;
        for (let j = 0; j < QK_K; j++) {
          const ax = Math.abs(src[x0 + j]);
          if (ax > amax) {
            amax = ax;
            max = src[x0 + j];
          }
        }
        dst.fill(0, o, o + Q8_K_BYTES);
        if (amax === 0) continue;
        const iscale = fr(-127 / max);
        for (let j = 0; j < QK_K; j++) dst[o + 4 + j] = Math.min(127, nearestInt(fr(iscale * src[x0 + j]))) & 0xff;
        for (let j = 0; j < QK_K / 16; j++) {
          let sum = 0;
          for (let i = 0; i < 16; i++) sum += q8KQuant(dst, o, 16 * j + i);
          view.setInt16(o + 260 + 2 * j, sum, true);
        }
        view.setFloat32(o, fr(1 / iscale), true);
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      const nb = checkWholeBlocks("q8_K", dst.length, QK_K);
      checkBytes("q8_K", "src", src.length, nb * Q8_K_BYTES);
      for (let b = 0; b < nb; b++) {
        const d = q8KScale(src, b * Q8_K_BYTES);
        for (let j = 0; j < QK_K; j++) dst[b * QK_K + j] = d * q8KQuant(src, b * Q8_K_BYTES, j);
      }
    },
    dot(): number {
      throw new Error("q8_K is only a dot partner (of q2_K .. q6_K); it has no dot of its own");
    },
  },
};
