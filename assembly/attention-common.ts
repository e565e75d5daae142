// Pieces shared by the per-head attention path (attention.ts) and the grouped one (attention-gqa.ts):
// GGML type ids, conversion of a row into any KV format or dot partner, and the softmax exponent.
import { quantizeRow_f32 } from "./formats/f32";
import { quantizeRow_f16 } from "./formats/f16";
import { quantizeRow_bf16 } from "./formats/bf16";
import { quantizeRow_q8_0 } from "./formats/q8_0";
import { quantizeRow_q8_1 } from "./formats/q8_1";
import { quantizeRow_q5_1 } from "./formats/q5_1";
import { quantizeRow_q5_0 } from "./formats/q5_0";
import { quantizeRow_q4_1 } from "./formats/q4_1";
import { quantizeRow_q4_0 } from "./formats/q4_0";
import { quantizeRow_iq4_nl } from "./formats/iq4_nl";
import { quantizeRow_iq3_nl } from "./formats/iq3_nl";
import { quantizeRow_iq2_nl } from "./formats/iq2_nl";
import { quantizeRow_iq3_e8 } from "./formats/iq3_e8";
import { quantizeRow_iq2_e8 } from "./formats/iq2_e8";

// GGML type ids (ggml.h enum ggml_type), the same numbers as the format table's `ggmlType`.
export const T_F32: i32 = 0;
export const T_F16: i32 = 1;
export const T_Q4_0: i32 = 2;
export const T_Q4_1: i32 = 3;
export const T_Q5_0: i32 = 6;
export const T_Q5_1: i32 = 7;
export const T_Q8_0: i32 = 8;
export const T_Q8_1: i32 = 9;
export const T_IQ4_NL: i32 = 20;
export const T_BF16: i32 = 30;
// kvsplit's own formats: ids from 1000 up (the format table's `ggmlType`), which no GGUF file holds.
export const T_IQ3_NL: i32 = 1003;
export const T_IQ2_NL: i32 = 1002;
export const T_IQ3_E8: i32 = 1013;
export const T_IQ2_E8: i32 = 1012;

/** Convert n f32 values into `type` (a KV format or a dot partner). Returns false for an unknown type. */
export function quantizeRow_byType(type: i32, src: usize, dst: usize, n: i32): bool {
  switch (type) {
    case T_F32: quantizeRow_f32(src, dst, n); return true;
    case T_F16: quantizeRow_f16(src, dst, n); return true;
    case T_BF16: quantizeRow_bf16(src, dst, n); return true;
    case T_Q8_0: quantizeRow_q8_0(src, dst, n); return true;
    case T_Q8_1: quantizeRow_q8_1(src, dst, n); return true;
    case T_Q5_1: quantizeRow_q5_1(src, dst, n); return true;
    case T_Q5_0: quantizeRow_q5_0(src, dst, n); return true;
    case T_Q4_1: quantizeRow_q4_1(src, dst, n); return true;
    case T_Q4_0: quantizeRow_q4_0(src, dst, n); return true;
    case T_IQ4_NL: quantizeRow_iq4_nl(src, dst, n); return true;
    case T_IQ3_NL: quantizeRow_iq3_nl(src, dst, n); return true;
    case T_IQ2_NL: quantizeRow_iq2_nl(src, dst, n); return true;
    case T_IQ3_E8: quantizeRow_iq3_e8(src, dst, n); return true;
    case T_IQ2_E8: quantizeRow_iq2_e8(src, dst, n); return true;
  }
  return false;
}

// exp for x <= 0 (scores minus their maximum), 4 lanes at a time: Cody–Waite reduction x = n·ln2 + r, |r| <= ln2/2,
// e^r by Cephes expf's degree-7 polynomial (relative error about 1e-7), times 2^n built in the exponent bits.
// Below -87 the result is 0 (it would be under 2^-125, nothing next to the maximum's 1).
const EXP_LOG2E: f32 = 1.44269504088896341;
const EXP_C1: f32 = 0.693359375;
const EXP_C2: f32 = -2.12194440e-4;
const EXP_P0: f32 = 1.9875691500e-4;
const EXP_P1: f32 = 1.3981999507e-3;
const EXP_P2: f32 = 8.3334519073e-3;
const EXP_P3: f32 = 4.1665795894e-2;
const EXP_P4: f32 = 1.6666665459e-1;
const EXP_P5: f32 = 5.0000001201e-1;
const EXP_MIN: f32 = -87.0;

/**
 * expNonPositive_f32x4's constants, each in four lanes, read from memory where used: V8 rebuilds a v128 immediate from
 * scalar moves on every loop iteration (formats/common.ts VECTOR_CONSTANTS), which cost more than the arithmetic here.
 */
const EXP_CONSTANTS: usize = memory.data<f32>([
  EXP_LOG2E, EXP_LOG2E, EXP_LOG2E, EXP_LOG2E, // 0
  EXP_C1, EXP_C1, EXP_C1, EXP_C1, // 16
  EXP_C2, EXP_C2, EXP_C2, EXP_C2, // 32
  EXP_P0, EXP_P0, EXP_P0, EXP_P0, // 48
  EXP_P1, EXP_P1, EXP_P1, EXP_P1, // 64
  EXP_P2, EXP_P2, EXP_P2, EXP_P2, // 80
  EXP_P3, EXP_P3, EXP_P3, EXP_P3, // 96
  EXP_P4, EXP_P4, EXP_P4, EXP_P4, // 112
  EXP_P5, EXP_P5, EXP_P5, EXP_P5, // 128
  1, 1, 1, 1, // 144
  EXP_MIN, EXP_MIN, EXP_MIN, EXP_MIN, // 160
  -126, -126, -126, -126, // 176: the smallest normal exponent
  127, 127, 127, 127, // 192: the exponent bias
], 16);

// @ts-ignore: decorator
@inline function expConst(offset: usize): v128 {
  return v128.load(EXP_CONSTANTS + offset);
}

/**
 * e^x for x <= 0. The exponent n is an integral f32 in [-126, 0] after the clamp (or NaN, for a NaN x), so adding the
 * bias in f32 is exact and the truncation is in range: the relaxed build's truncation (one instruction) gives the
 * saturating one's integer there; a NaN lane's 2^n is garbage in either build and masked to 0 by `keep`. pmax is max
 * for everything but a NaN or a ±0 tie, neither of which can change this clamp's result.
 */
// @ts-ignore: decorator
@inline export function expNonPositive_f32x4(x: v128): v128 {
  const n = f32x4.nearest(f32x4.mul(x, expConst(0)));
  let r = f32x4.sub(x, f32x4.mul(n, expConst(16)));
  r = f32x4.sub(r, f32x4.mul(n, expConst(32)));
  let y = f32x4.add(f32x4.mul(expConst(48), r), expConst(64));
  y = f32x4.add(f32x4.mul(y, r), expConst(80));
  y = f32x4.add(f32x4.mul(y, r), expConst(96));
  y = f32x4.add(f32x4.mul(y, r), expConst(112));
  y = f32x4.add(f32x4.mul(y, r), expConst(128));
  y = f32x4.add(f32x4.add(f32x4.mul(y, f32x4.mul(r, r)), r), expConst(144));
  const keep = f32x4.ge(x, expConst(160));
  const biased = f32x4.add(f32x4.pmax(n, expConst(176)), expConst(192));
  const exponent = ASC_FEATURE_RELAXED_SIMD ? i32x4.relaxed_trunc_f32x4_s(biased) : i32x4.trunc_sat_f32x4_s(biased);
  return v128.and(f32x4.mul(y, i32x4.shl(exponent, 23)), keep);
}

// ---- the layer descriptor: one per cache layer, written once by src/kv/cache.ts (LAYER_DESC there: same order) ----
// i32 fields (byte offset = 4 × index); `scale` is an f32.
export const D_N_HEADS: usize = 0;
export const D_N_KV_HEADS: usize = 4;
export const D_HEAD_DIM: usize = 8;
export const D_SCALE: usize = 12;
// K_ROWS, V_ROWS: the layer's K and V storage. K_ROW_BYTES, V_ROW_BYTES: bytes from one position to the next.
// HEAD_MAJOR 0: one row per position holds every kv head (a head's slice found by its value offset, blocks may span
// heads); 1: one plane per kv head (positions of that head contiguous), K_HEAD_STRIDE / V_HEAD_STRIDE bytes apart.
export const D_K_ROWS: usize = 16;
export const D_K_ROW_BYTES: usize = 20;
export const D_K_TYPE: usize = 24;
export const D_K_PARTNER: usize = 28;
export const D_K_BLOCK: usize = 32;
export const D_K_BLOCK_BYTES: usize = 36;
export const D_V_ROWS: usize = 40;
export const D_V_ROW_BYTES: usize = 44;
export const D_V_TYPE: usize = 48;
export const D_V_BLOCK: usize = 52;
export const D_V_BLOCK_BYTES: usize = 56;
export const D_ROT_K: usize = 60;
export const D_ROT_V: usize = 64;
export const D_MAX_POS: usize = 68;
export const D_HEAD_MAJOR: usize = 72;
export const D_K_HEAD_STRIDE: usize = 76;
export const D_V_HEAD_STRIDE: usize = 80;
// K_GROUP_BYTES 0: K rows per position (above). Else keys per channel: a kv head's plane holds groups of
// KEY_GROUP positions, each K_GROUP_BYTES = headDim blocks, block c = channel c of the group's positions in order.
export const D_K_GROUP_BYTES: usize = 84;
/** Bytes of a layer descriptor. */
export const LAYER_DESC_BYTES: i32 = 88;
/** Positions in one group of keys stored per channel (one block of a 32-value block format). */
export const KEY_GROUP: i32 = 32;

// @ts-ignore: decorator
@inline export function descI32(desc: usize, field: usize): i32 {
  return load<i32>(desc + field);
}

/** Round a byte count up to 16. */
// @ts-ignore: decorator
@inline export function align16(n: usize): usize {
  return (n + 15) & ~(<usize>15);
}

/** Values of the longest run of whole blocks covering one head's slice, for any KV block size (1 or 32). */
// @ts-ignore: decorator
@inline export function maxCoverValues(headDim: i32): i32 {
  return (headDim / 32 + 2) * 32;
}

/** Per-thread scratch bytes of attendHeads_packed: scores (maxPos) | qCover | qPartner | acc (maxCover each) | qRot (headDim). */
export function attendHeadsScratchBytes(headDim: i32, maxPos: i32): usize {
  const cover = <usize>maxCoverValues(headDim) << 2;
  return align16(<usize>maxPos << 2) + 3 * align16(cover) + align16(<usize>headDim << 2);
}
