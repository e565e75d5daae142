/**
 * Pieces the block-format tests share: a row through a format's scalar reference (src/formats/reference), the first
 * index where two value lists differ, and the stated rounding bound of a dot product of two quantized rows.
 */
import { rowBytes } from "../../src/formats/table.js";
import type { BlockFormat } from "../../src/formats/types.js";

/** `x` quantized by the format's scalar reference: (rowBytes(format, x.length)) bytes. */
export function referenceQuantize(format: BlockFormat, x: Float32Array): Uint8Array {
  const out = new Uint8Array(rowBytes(format, x.length)); // (rowBytes)
  format.reference.quantizeRow(x, out);
  return out;
}

/** `n` values dequantized from `bytes` by the format's scalar reference. */
export function referenceDequantize(format: BlockFormat, bytes: Uint8Array, n: number): Float32Array {
  const out = new Float32Array(n); // (n)
  format.reference.dequantizeRow(bytes, out);
  return out;
}

/** First index where a and b differ (Object.is: NaN equals NaN, 0 differs from -0), the shorter length if one is a prefix, else -1. */
export function firstMismatch(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

/** Σ over elements of (|a_i| + largest |a| in its block) × |b_i|: the magnitude that scales a dot's rounding error. */
export function dotMagnitude(format: BlockFormat, a: Float32Array, b: Float32Array): number {
  let total = 0;
  for (let s = 0; s < a.length; s += format.blockSize) {
    let amax = 0;
    for (let j = s; j < s + format.blockSize; j++) amax = Math.max(amax, Math.abs(a[j]));
    for (let j = s; j < s + format.blockSize; j++) total += (Math.abs(a[j]) + amax) * Math.abs(b[j]);
  }
  return total;
}

/**
 * The stated dot tolerance: f32 accumulation over at most k = ceil(n / max(blockSize, 4)) + 10 sequential
 * additions (the WebAssembly kernels sum blocks or 4-lane chunks in f32; the reference sums in double),
 * each off by at most 2^-24 relative, on a running sum no larger than the magnitude: |Δ| <= k · 2^-23 · M.
 * `a` is the dequantized row of `format`, `b` its partner's, both n values.
 */
export function dotTolerance(format: BlockFormat, n: number, a: Float32Array, b: Float32Array): number {
  const k = Math.ceil(n / Math.max(format.blockSize, 4)) + 10;
  return k * 2 ** -23 * dotMagnitude(format, a, b) + 1e-30;
}
