/**
 * q5_1: 32 values per 24-byte block, 5-bit with a minimum.
 * Block layout (ggml-common.h block_q5_1): fp16 d | fp16 m | u32 qh (5th bit of value j at bit j, little-endian) |
 * 16 B nibbles (byte j: value j low nibble, value j+16 high nibble). value = q × d + m, q in 0..31.
 * Dot partner: q8_1 (fp16 d, fp16 s = d × Σ quants, 32 × int8).
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, writeF16 } from "./scalar.js";
import { truncToInt8 } from "./q5_0.js";

const fround = Math.fround;
export const Q5_1_BLOCK = 32;
export const Q5_1_BYTES = 24;
const Q8_1_BYTES = 36;
const FLT_MAX = 3.4028234663852886e38;

/** Quantize exactly as ggml's quantize_row_q5_1_ref: d = (max − min) / 31, m = min, q = (uint8)((x − min)/d + 0.5). */
export function quantizeRowQ5_1(src: Float32Array, dst: Uint8Array): void {
  const nBlocks = checkRow(src.length, dst.length);
  for (let b = 0; b < nBlocks; b++) {
    const x = src.subarray(b * Q5_1_BLOCK, (b + 1) * Q5_1_BLOCK); // (32)
    let min = FLT_MAX;
    let max = -FLT_MAX;
    for (let j = 0; j < Q5_1_BLOCK; j++) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const d = fround(fround(max - min) / 31);
    const id = d ? fround(1 / d) : 0;
    const base = b * Q5_1_BYTES;
    writeF16(dst, base, d);
    writeF16(dst, base + 2, min);
    let qh = 0;
    for (let j = 0; j < 16; j++) {
      // (uint8_t)(float) on x86-64 truncates through int32 and keeps the low byte, as for int8.
      const q0 = truncToInt8(fround(fround(fround(x[j] - min) * id) + 0.5)) & 0xff;
      const q1 = truncToInt8(fround(fround(fround(x[j + 16] - min) * id) + 0.5)) & 0xff;
      dst[base + 8 + j] = (q0 & 0x0f) | ((q1 & 0x0f) << 4);
      qh |= ((q0 >> 4) & 1) << j;
      qh |= ((q1 >> 4) & 1) << (j + 16);
    }
    for (let k = 0; k < 4; k++) dst[base + 4 + k] = (qh >>> (8 * k)) & 0xff;
  }
}

/** The 32 unsigned quants (0..31) of block `b`. */
export function blockQuantsQ5_1(row: Uint8Array, b: number): Uint8Array {
  const base = b * Q5_1_BYTES;
  const qh = (row[base + 4] | (row[base + 5] << 8) | (row[base + 6] << 16) | (row[base + 7] << 24)) >>> 0;
  const q = new Uint8Array(Q5_1_BLOCK); // (32)
  for (let j = 0; j < 16; j++) {
    const byte = row[base + 8 + j];
    q[j] = (byte & 0x0f) | (((qh >>> j) & 1) << 4);
    q[j + 16] = (byte >> 4) | (((qh >>> (j + 16)) & 1) << 4);
  }
  return q;
}

export function dequantizeRowQ5_1(src: Uint8Array, dst: Float32Array): void {
  const nBlocks = checkRow(dst.length, src.length);
  for (let b = 0; b < nBlocks; b++) {
    const d = readF16(src, b * Q5_1_BYTES);
    const m = readF16(src, b * Q5_1_BYTES + 2);
    const q = blockQuantsQ5_1(src, b);
    for (let j = 0; j < Q5_1_BLOCK; j++) dst[b * Q5_1_BLOCK + j] = fround(fround(q[j] * d) + m);
  }
}

/**
 * ggml_vec_dot_q5_1_q8_1: per block fp32(d_x)·fp32(d_y) × Σ q_x·q_y + fp32(m_x)·fp32(s_y)
 * (s_y carries d_y × Σ q_y, so the minimum's contribution costs one multiply); blocks summed in float64.
 */
export function dotQ5_1Q8_1(row: Uint8Array, x: Uint8Array, n: number): number {
  const nBlocks = checkWholeBlocks("q5_1", n, Q5_1_BLOCK);
  checkBytes("q5_1", "row", row.length, nBlocks * Q5_1_BYTES);
  checkBytes("q5_1", "q8_1 operand", x.length, nBlocks * Q8_1_BYTES);
  let sum = 0;
  for (let b = 0; b < nBlocks; b++) {
    const q = blockQuantsQ5_1(row, b);
    const xBase = b * Q8_1_BYTES;
    let sumi = 0;
    for (let j = 0; j < Q5_1_BLOCK; j++) sumi += q[j] * ((x[xBase + 4 + j] << 24) >> 24);
    const rowBase = b * Q5_1_BYTES;
    const scale = fround(readF16(row, rowBase) * readF16(x, xBase));
    const minTerm = fround(readF16(row, rowBase + 2) * readF16(x, xBase + 2));
    sum += fround(scale * sumi) + minTerm;
  }
  return sum;
}

function checkRow(nValues: number, nBytes: number): number {
  const nBlocks = checkWholeBlocks("q5_1", nValues, Q5_1_BLOCK);
  checkBytes("q5_1", "row", nBytes, nBlocks * Q5_1_BYTES);
  return nBlocks;
}

export const q5_1: BlockFormat = {
  name: "q5_1",
  ggmlType: 7,
  blockSize: Q5_1_BLOCK,
  bytesPerBlock: Q5_1_BYTES,
  dotPartner: "q8_1",
  kv: true,
  weight: true,
  reference: { quantizeRow: quantizeRowQ5_1, dequantizeRow: dequantizeRowQ5_1, dot: dotQ5_1Q8_1 },
  kernels: kernelNames("q5_1"),
};
