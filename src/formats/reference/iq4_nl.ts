/**
 * iq4_nl: 32 values per 18-byte block, 4-bit indices into a fixed non-linear table.
 * Block layout (ggml-common.h block_iq4_nl): fp16 d | 16 B nibbles (byte j: index of value j in the low nibble,
 * of value j+16 in the high nibble). value = d × IQ4_NL_VALUES[index].
 * Dot partner: q8_0.
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, writeF16 } from "./scalar.js";

const fround = Math.fround;
export const IQ4_NL_BLOCK = 32;
export const IQ4_NL_BYTES = 18;
const Q8_0_BYTES = 34;

/** ggml's kvalues_iq4nl: the 16 levels, ascending. */
export const IQ4_NL_VALUES: readonly number[] = [-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113];
/** Blocks whose largest magnitude is below this are stored with d = 0 (ggml's GROUP_MAX_EPS, as a float). */
const GROUP_MAX_EPS = fround(1e-15);

/**
 * The index of the level nearest `x` (ggml's best_index_int8): clamp to the ends, binary search, and on the final pair
 * take the lower level only when it is strictly nearer (a tie goes up). Differences are float operations.
 */
export function nearestLevelIq4Nl(x: number): number {
  const v = IQ4_NL_VALUES;
  if (x <= v[0]) return 0;
  if (x >= v[15]) return 15;
  let lo = 0;
  let hi = 15;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x < v[mid]) hi = mid;
    else lo = mid;
  }
  return fround(x - v[hi - 1]) < fround(v[hi] - x) ? hi - 1 : hi;
}

/**
 * Quantize exactly as ggml's quantize_row_iq4_nl_ref (quantize_row_iq4_nl_impl with one 32-value block, no importance
 * weights, ntry = −1): indices from the trial scale max/−127 (max = the value of largest magnitude, first wins);
 * stored scale = the weighted least-squares fit Σ w·q·x / Σ w·q² with w = x², indices not recomputed.
 * A block with every |x| < 1e-15 gets d = 0; llama.cpp then leaves its nibbles as the previous block's (its index
 * buffer is reused uninitialised), which this copies, using zero nibbles for a row's first block.
 */
export function quantizeRowIq4Nl(src: Float32Array, dst: Uint8Array): void {
  const nBlocks = checkRow(src.length, dst.length);
  const indices = new Uint8Array(IQ4_NL_BLOCK); // (32) carried from block to block as in llama.cpp
  for (let b = 0; b < nBlocks; b++) {
    const x = src.subarray(b * IQ4_NL_BLOCK, (b + 1) * IQ4_NL_BLOCK); // (32)
    const base = b * IQ4_NL_BYTES;
    let amax = 0;
    let max = 0;
    for (let j = 0; j < IQ4_NL_BLOCK; j++) {
      const ax = Math.abs(x[j]);
      if (ax > amax) {
        amax = ax;
        max = x[j];
      }
    }
    let d = 0;
    if (!(amax < GROUP_MAX_EPS)) {
      const id = fround(1 / fround(max / IQ4_NL_VALUES[0]));
      let sumqx = 0;
      let sumq2 = 0;
      for (let j = 0; j < IQ4_NL_BLOCK; j++) {
        const l = nearestLevelIq4Nl(fround(id * x[j]));
        indices[j] = l;
        const q = IQ4_NL_VALUES[l];
        const w = fround(x[j] * x[j]);
        const wq = fround(w * q);
        sumqx = fround(sumqx + fround(wq * x[j]));
        sumq2 = fround(sumq2 + fround(wq * q));
      }
      d = sumq2 > 0 ? fround(sumqx / sumq2) : 0;
    }
    writeF16(dst, base, d);
    for (let j = 0; j < 16; j++) dst[base + 2 + j] = indices[j] | (indices[j + 16] << 4);
  }
}

/**
 * How many blocks at the start of a row have every |x| < 1e-15: llama.cpp leaves their nibbles uninitialised
 * (stack contents), so only their d (0) is defined. Tests comparing bytes with llama.cpp skip those nibbles.
 */
export function leadingTinyBlocksIq4Nl(src: Float32Array): number {
  let b = 0;
  while ((b + 1) * IQ4_NL_BLOCK <= src.length && src.subarray(b * IQ4_NL_BLOCK, (b + 1) * IQ4_NL_BLOCK).every((v) => Math.abs(v) < GROUP_MAX_EPS)) b++;
  return b;
}

export function dequantizeRowIq4Nl(src: Uint8Array, dst: Float32Array): void {
  const nBlocks = checkRow(dst.length, src.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ4_NL_BYTES;
    const d = readF16(src, base);
    for (let j = 0; j < 16; j++) {
      const byte = src[base + 2 + j];
      dst[b * IQ4_NL_BLOCK + j] = fround(d * IQ4_NL_VALUES[byte & 0x0f]);
      dst[b * IQ4_NL_BLOCK + j + 16] = fround(d * IQ4_NL_VALUES[byte >> 4]);
    }
  }
}

/** ggml_vec_dot_iq4_nl_q8_0: per block fp32(d_y)·fp32(d_x) × Σ level·q_y; blocks summed in float64. */
export function dotIq4NlQ8_0(row: Uint8Array, x: Uint8Array, n: number): number {
  const nBlocks = checkWholeBlocks("iq4_nl", n, IQ4_NL_BLOCK);
  checkBytes("iq4_nl", "row", row.length, nBlocks * IQ4_NL_BYTES);
  checkBytes("iq4_nl", "q8_0 operand", x.length, nBlocks * Q8_0_BYTES);
  let sum = 0;
  for (let b = 0; b < nBlocks; b++) {
    const base = b * IQ4_NL_BYTES;
    const xBase = b * Q8_0_BYTES;
    let sumi = 0;
    for (let j = 0; j < 16; j++) {
      const byte = row[base + 2 + j];
      sumi += IQ4_NL_VALUES[byte & 0x0f] * ((x[xBase + 2 + j] << 24) >> 24);
      sumi += IQ4_NL_VALUES[byte >> 4] * ((x[xBase + 18 + j] << 24) >> 24);
    }
    sum += fround(fround(readF16(x, xBase) * readF16(row, base)) * sumi);
  }
  return sum;
}

function checkRow(nValues: number, nBytes: number): number {
  const nBlocks = checkWholeBlocks("iq4_nl", nValues, IQ4_NL_BLOCK);
  checkBytes("iq4_nl", "row", nBytes, nBlocks * IQ4_NL_BYTES);
  return nBlocks;
}

export const iq4_nl: BlockFormat = {
  name: "iq4_nl",
  ggmlType: 20,
  blockSize: IQ4_NL_BLOCK,
  bytesPerBlock: IQ4_NL_BYTES,
  dotPartner: "q8_0",
  kv: true,
  weight: true,
  reference: { quantizeRow: quantizeRowIq4Nl, dequantizeRow: dequantizeRowIq4Nl, dot: dotIq4NlQ8_0 },
  kernels: kernelNames("iq4_nl"),
};
