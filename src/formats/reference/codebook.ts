/**
 * kvsplit's own codebook KV formats, one generic shape for iq3_nl / iq3_e8 (3-bit indices) and iq2_nl / iq2_e8
 * (2-bit): 32 values per block, each an index into a fixed non-linear table of levels (the Lloyd-Max levels of a unit
 * Gaussian, scaled to ±127), times one scale per block: fp16 (the _nl formats) or a one-byte logarithmic code (the
 * _e8 formats, e8-scale.ts: 0.25 bits per value less). Keys and values are near-Gaussian after the Hadamard rotation
 * kvsplit applies to quantized caches (rotation.ts), which is what these levels are fitted to.
 *
 * Block layout (little-endian):
 *   iq3_nl, 14 bytes (3.5 bits per value):  fp16 d | qs[8] | qh[4]
 *   iq2_nl, 10 bytes (2.5 bits per value):  fp16 d | qs[8]
 *   iq3_e8, 13 bytes (3.25 bits per value): u8 e   | qs[8] | qh[4]
 *   iq2_e8,  9 bytes (2.25 bits per value): u8 e   | qs[8]
 *   qs byte j (0..7) holds the low two index bits of values j, j+8, j+16, j+24 in bits 0-1, 2-3, 4-5, 6-7;
 *   qh byte v & 3, bit v >> 2 holds index bit 2 of value v (so that a decoder's i32 lane g sees its values' bits at
 *   one position per byte: one multiply per block lines them up, where one bit per value in value order needs a byte
 *   shuffle and a compare per half).
 *   value = d × LEVELS[index], d = fp16 d or e8Value(e).
 * Quantizer: for each trial scale (the largest |x| mapped to 127·t/16, t in the format's trials: 14..27 for iq3_nl,
 * 18, 20, .., 40 for iq2_nl, where the best scales of Gaussian blocks lie), every value takes its nearest
 * level (a value on a midpoint goes up), then the least-squares scale d = Σ x·L / Σ L²; the trial with the largest
 * (Σ x·L)² / Σ L², that is the smallest squared error, wins (the first on ties). All sums in f32, in value order.
 * The _e8 formats then try the two codes around d (e8Below and the next): under each, every value takes the level
 * nearest x · (1 / d_e8) (code 0, below the smallest scale: all zeros), and the code with the smaller
 * Σ (x − d_e8 · L)² (f32, in value order) wins, the lower on ties. A block whose largest |x| is below 1e-15 (or NaN)
 * gets d = 0 (code 0) and index 0 everywhere.
 * Dot partner: q8_0, with iq4_nl's formula (per block fp32(d_x)·fp32(d) × Σ level·q).
 * The WebAssembly kernels (assembly/formats/codebook.ts) equal this reference byte for byte.
 */
import type { BlockFormat, FormatName } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, writeF16 } from "./scalar.js";
import { e8Below, e8Value } from "./e8-scale.js";

const fround = Math.fround;
const BLOCK = 32;
const Q8_0_BYTES = 34;
const GROUP_MAX_EPS = fround(1e-15);

/** A codebook format's constants: its index bits, ascending int8 levels, block bytes and trial scales. */
export interface Codebook {
  readonly name: FormatName;
  readonly bits: 2 | 3;
  /** The block scale: fp16 (2 bytes) or a one-byte logarithmic code (e8-scale.ts). */
  readonly scale: "f16" | "e8";
  readonly levels: readonly number[];
  readonly bytesPerBlock: number;
  /** Trial scales map the largest |x| to 127·t/16 for t = first, first + step, .., last. */
  readonly trials: { readonly first: number; readonly last: number; readonly step: number };
}

/** Lloyd-Max levels of a unit Gaussian (±0.2451, ±0.7560, ±1.3440, ±2.1520) scaled so the largest is 127. */
export const IQ3_NL_LEVELS: readonly number[] = [-127, -79, -45, -14, 14, 45, 79, 127];
/** Lloyd-Max levels of a unit Gaussian (±0.4528, ±1.5104) scaled so the largest is 127. */
export const IQ2_NL_LEVELS: readonly number[] = [-127, -38, 38, 127];

const IQ3_TRIALS = { first: 14, last: 27, step: 1 };
const IQ2_TRIALS = { first: 18, last: 40, step: 2 };
export const IQ3_NL: Codebook = { name: "iq3_nl", bits: 3, scale: "f16", levels: IQ3_NL_LEVELS, bytesPerBlock: 14, trials: IQ3_TRIALS };
export const IQ2_NL: Codebook = { name: "iq2_nl", bits: 2, scale: "f16", levels: IQ2_NL_LEVELS, bytesPerBlock: 10, trials: IQ2_TRIALS };
export const IQ3_E8: Codebook = { name: "iq3_e8", bits: 3, scale: "e8", levels: IQ3_NL_LEVELS, bytesPerBlock: 13, trials: IQ3_TRIALS };
export const IQ2_E8: Codebook = { name: "iq2_e8", bits: 2, scale: "e8", levels: IQ2_NL_LEVELS, bytesPerBlock: 9, trials: IQ2_TRIALS };

/** Bytes of the block scale, where qs starts. */
function scaleBytes(cb: Codebook): number {
  return cb.scale === "f16" ? 2 : 1;
}

/** The block's scale d as the kernels decode it. */
export function codebookScale(cb: Codebook, bytes: Uint8Array, base: number): number {
  return cb.scale === "f16" ? readF16(bytes, base) : e8Value(bytes[base]!);
}

/** The index of the level nearest y: the number of midpoints at or below y (exact on f32 values). */
export function nearestCodebookIndex(cb: Codebook, y: number): number {
  let index = 0;
  for (let i = 1; i < cb.levels.length; i++) if (y >= (cb.levels[i - 1]! + cb.levels[i]!) / 2) index = i;
  return index;
}

function checkRow(cb: Codebook, nValues: number, nBytes: number): number {
  const nBlocks = checkWholeBlocks(cb.name, nValues, BLOCK);
  checkBytes(cb.name, "row", nBytes, nBlocks * cb.bytesPerBlock);
  return nBlocks;
}

/** Index of value j within its block, read from the packed bytes at `base`. */
function readIndex(cb: Codebook, bytes: Uint8Array, base: number, j: number): number {
  const qs = base + scaleBytes(cb);
  const low = (bytes[qs + (j & 7)]! >> ((j >> 3) * 2)) & 3;
  if (cb.bits === 2) return low;
  return low | (((bytes[qs + 8 + (j & 3)]! >> (j >> 2)) & 1) << 2);
}

export function quantizeRowCodebook(cb: Codebook, src: Float32Array, dst: Uint8Array): void {
  const nBlocks = checkRow(cb, src.length, dst.length);
  const trial = new Uint8Array(BLOCK); // (32) indices of the current trial
  const best = new Uint8Array(BLOCK); // (32) indices of the best trial
  for (let b = 0; b < nBlocks; b++) {
    const x = src.subarray(b * BLOCK, (b + 1) * BLOCK); // (32)
    let amax = 0;
    for (let j = 0; j < BLOCK; j++) amax = Math.max(amax, Math.abs(x[j]!));
    best.fill(0);
    let d = 0;
    if (amax >= GROUP_MAX_EPS) {
      let bestScore = -1;
      for (let t = cb.trials.first; t <= cb.trials.last; t += cb.trials.step) {
        const id = fround((127 * t) / 16 / amax);
        let sumxl = 0;
        let suml2 = 0;
        for (let j = 0; j < BLOCK; j++) {
          const i = nearestCodebookIndex(cb, fround(id * x[j]!));
          trial[j] = i;
          const l = cb.levels[i]!;
          sumxl = fround(sumxl + fround(x[j]! * l));
          suml2 += l * l; // an integer below 2^24: exact in f32
        }
        const score = fround(fround(sumxl * sumxl) / suml2);
        if (score > bestScore) {
          bestScore = score;
          d = fround(sumxl / suml2);
          best.set(trial);
        }
      }
    }
    const base = b * cb.bytesPerBlock;
    if (cb.scale === "f16") {
      writeF16(dst, base, d);
    } else {
      dst[base] = e8Code(cb, x, d, best);
    }
    const qs = base + scaleBytes(cb);
    for (let j = 0; j < 8; j++) {
      dst[qs + j] = (best[j]! & 3) | ((best[j + 8]! & 3) << 2) | ((best[j + 16]! & 3) << 4) | ((best[j + 24]! & 3) << 6);
    }
    if (cb.bits === 3) {
      for (let k = 0; k < 4; k++) {
        let byte = 0;
        for (let bit = 0; bit < 8; bit++) byte |= (best[bit * 4 + k]! >> 2) << bit;
        dst[qs + 8 + k] = byte;
      }
    }
  }
}

/**
 * An e8 format's code for a block whose least-squares scale is d: the better of the two codes around d (code 0, all
 * zeros, below the smallest scale), with `indices` (32) set to each value's nearest level under it (0 everywhere for
 * code 0).
 */
function e8Code(cb: Codebook, x: Float32Array, d: number, indices: Uint8Array): number {
  indices.fill(0);
  if (!(d > 0)) return 0;
  const fit = (e: number, out: Uint8Array): number => {
    if (e === 0) return zerosError(x);
    const scale = e8Value(e);
    const inverse = fround(1 / scale);
    let err = 0;
    for (let j = 0; j < BLOCK; j++) {
      out[j] = nearestCodebookIndex(cb, fround(inverse * x[j]!));
      const t = fround(x[j]! - fround(scale * cb.levels[out[j]!]!));
      err = fround(err + fround(t * t));
    }
    return err;
  };
  const lo = e8Below(d);
  const errLo = fit(lo, indices);
  if (lo === 255) return lo;
  const next = new Uint8Array(BLOCK); // (32) indices under the next code
  if (!(fit(lo + 1, next) < errLo)) return lo;
  indices.set(next);
  return lo + 1;
}

/** Σ x² (f32, in value order): a block's squared error as all zeros. */
function zerosError(x: Float32Array): number {
  let err = 0;
  for (let j = 0; j < BLOCK; j++) err = fround(err + fround(x[j]! * x[j]!));
  return err;
}

export function dequantizeRowCodebook(cb: Codebook, src: Uint8Array, dst: Float32Array): void {
  const nBlocks = checkRow(cb, dst.length, src.length);
  for (let b = 0; b < nBlocks; b++) {
    const base = b * cb.bytesPerBlock;
    const d = codebookScale(cb, src, base);
    for (let j = 0; j < BLOCK; j++) dst[b * BLOCK + j] = fround(d * cb.levels[readIndex(cb, src, base, j)]!);
  }
}

/** Per block fp32(d_x)·fp32(d) × Σ level·q_x (q_x the q8_0 partner's int8 values); blocks summed in float64. */
export function dotCodebookQ8_0(cb: Codebook, row: Uint8Array, x: Uint8Array, n: number): number {
  const nBlocks = checkWholeBlocks(cb.name, n, BLOCK);
  checkBytes(cb.name, "row", row.length, nBlocks * cb.bytesPerBlock);
  checkBytes(cb.name, "q8_0 operand", x.length, nBlocks * Q8_0_BYTES);
  let sum = 0;
  for (let b = 0; b < nBlocks; b++) {
    const base = b * cb.bytesPerBlock;
    const xBase = b * Q8_0_BYTES;
    let sumi = 0;
    for (let j = 0; j < BLOCK; j++) sumi += cb.levels[readIndex(cb, row, base, j)]! * ((x[xBase + 2 + j]! << 24) >> 24);
    sum += fround(fround(readF16(x, xBase) * codebookScale(cb, row, base)) * sumi);
  }
  return sum;
}

/**
 * The table entry of a codebook format. `typeId` is kvsplit's own (from 1000 up): no GGUF file holds these formats,
 * so formatByGgmlType never returns them; the WebAssembly kernels take it as their type code.
 */
export function codebookFormat(cb: Codebook, typeId: number): BlockFormat {
  return {
    name: cb.name,
    ggmlType: typeId,
    blockSize: BLOCK,
    bytesPerBlock: cb.bytesPerBlock,
    dotPartner: "q8_0",
    kv: true,
    weight: false,
    reference: {
      quantizeRow: (src, dst) => quantizeRowCodebook(cb, src, dst),
      dequantizeRow: (src, dst) => dequantizeRowCodebook(cb, src, dst),
      dot: (row, x, n) => dotCodebookQ8_0(cb, row, x, n),
    },
    kernels: kernelNames(cb.name),
  };
}
