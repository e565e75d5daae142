// Attention straight from the packed KV cache: scores from the K format's dot against packed K blocks, the weighted
// sum from the V format's axpy over packed V blocks. No f32 copy of the cache exists at any moment.
//
// Method (compared with llama.cpp's CPU flash attention, ggml-cpu ops.cpp ggml_compute_forward_flash_attn_ext_f16):
// - Copied: each query head is converted once to the K format's dot partner (q8_0 for q8_0/q5_0/q4_0/iq4_nl keys,
//   q8_1 for q5_1/q4_1, f16/bf16/f32 for those keys) and every score is that format's vec_dot, then × 1/sqrt(headDim).
//   So quantized keys see the same query rounding as in llama.cpp and KL divergences are comparable.
// - More precise: the softmax is two-pass (exact max, then exp and sum, in f32; exp is a SIMD polynomial within about
//   1e-7 relative of expf) instead of online, and V is always
//   accumulated in f32 (llama.cpp accumulates in f16 when V is f16).
// - Heads that do not start on a block boundary (headDim not a multiple of the block size, e.g. stories260K's
//   headDim 8 with 32-value blocks, which llama.cpp refuses): a head's K slice lies in a run of "covering" blocks of
//   the position's row. The query head is written at its offset into a zeroed f32 run as long as the covering blocks
//   and that run is converted to the dot partner, so the partner's scale comes from this head's values only and the
//   zeros cancel the other heads' values in the dot exactly (also the q8_1 sum term, which covers only this head).
//   For V, the covering blocks are accumulated with axpy into an f32 scratch run and the head's slice is copied out.
//   Aligned heads are the special case where the covering run is exactly the head's slice (no scratch detour).
import { dot_f32, axpy_f32 } from "./formats/f32";
import { dot_f16, axpy_f16 } from "./formats/f16";
import { dot_bf16, axpy_bf16 } from "./formats/bf16";
import { dot_q8_0, axpy_q8_0 } from "./formats/q8_0";
import { dot_q5_1, axpy_q5_1 } from "./formats/q5_1";
import { dot_q5_0, axpy_q5_0 } from "./formats/q5_0";
import { dot_q4_1, axpy_q4_1 } from "./formats/q4_1";
import { dot_q4_0, axpy_q4_0 } from "./formats/q4_0";
import { dot_iq4_nl, axpy_iq4_nl } from "./formats/iq4_nl";
import { dot_iq3_nl, axpy_iq3_nl } from "./formats/iq3_nl";
import { dot_iq2_nl, axpy_iq2_nl } from "./formats/iq2_nl";
import { dot_iq3_e8, axpy_iq3_e8 } from "./formats/iq3_e8";
import { dot_iq2_e8, axpy_iq2_e8 } from "./formats/iq2_e8";
import { fwht_f32 } from "./rotation";
import {
  T_F32, T_F16, T_BF16, T_Q8_0, T_Q5_1, T_Q5_0, T_Q4_1, T_Q4_0, T_IQ4_NL, T_IQ3_NL, T_IQ2_NL, T_IQ3_E8, T_IQ2_E8, quantizeRow_byType, expNonPositive_f32x4,
  descI32, align16, D_N_HEADS, D_N_KV_HEADS, D_HEAD_DIM, D_SCALE, D_K_ROWS, D_K_ROW_BYTES, D_K_TYPE, D_K_PARTNER, D_K_BLOCK,
  D_K_BLOCK_BYTES, D_V_ROWS, D_V_ROW_BYTES, D_V_TYPE, D_V_BLOCK, D_V_BLOCK_BYTES, D_ROT_K, D_ROT_V, D_MAX_POS, D_HEAD_MAJOR, D_K_HEAD_STRIDE, D_V_HEAD_STRIDE,
  maxCoverValues,
} from "./attention-common";

export { quantizeRow_byType, attendHeadsScratchBytes } from "./attention-common";
export { attendGrouped_packed, attendScratchBytes, attendLayerDescBytes, attendTokenTile } from "./attention-gqa";

@inline
function dot_byType(type: i32, row: usize, x: usize, n: i32): f32 {
  switch (type) {
    case T_F32: return dot_f32(row, x, n);
    case T_F16: return dot_f16(row, x, n);
    case T_BF16: return dot_bf16(row, x, n);
    case T_Q8_0: return dot_q8_0(row, x, n);
    case T_Q5_1: return dot_q5_1(row, x, n);
    case T_Q5_0: return dot_q5_0(row, x, n);
    case T_Q4_1: return dot_q4_1(row, x, n);
    case T_Q4_0: return dot_q4_0(row, x, n);
    case T_IQ4_NL: return dot_iq4_nl(row, x, n);
    case T_IQ3_NL: return dot_iq3_nl(row, x, n);
    case T_IQ2_NL: return dot_iq2_nl(row, x, n);
    case T_IQ3_E8: return dot_iq3_e8(row, x, n);
    case T_IQ2_E8: return dot_iq2_e8(row, x, n);
  }
  return NaN;
}

@inline
function axpy_byType(type: i32, out: usize, w: f32, row: usize, n: i32): void {
  switch (type) {
    case T_F32: axpy_f32(out, w, row, n); break;
    case T_F16: axpy_f16(out, w, row, n); break;
    case T_BF16: axpy_bf16(out, w, row, n); break;
    case T_Q8_0: axpy_q8_0(out, w, row, n); break;
    case T_Q5_1: axpy_q5_1(out, w, row, n); break;
    case T_Q5_0: axpy_q5_0(out, w, row, n); break;
    case T_Q4_1: axpy_q4_1(out, w, row, n); break;
    case T_Q4_0: axpy_q4_0(out, w, row, n); break;
    case T_IQ4_NL: axpy_iq4_nl(out, w, row, n); break;
    case T_IQ3_NL: axpy_iq3_nl(out, w, row, n); break;
    case T_IQ2_NL: axpy_iq2_nl(out, w, row, n); break;
    case T_IQ3_E8: axpy_iq3_e8(out, w, row, n); break;
    case T_IQ2_E8: axpy_iq2_e8(out, w, row, n); break;
  }
}

/** scores[p] = exp(scores[p] − max) for p < n (in place); returns their sum. */
export function expShiftedSum_f32(scores: usize, n: i32, max: f32): f32 {
  const maxV = f32x4.splat(max);
  let sumV = f32x4.splat(0);
  let p = 0;
  for (; p + 4 <= n; p += 4) {
    const ptr = scores + (<usize>p << 2);
    const e = expNonPositive_f32x4(f32x4.sub(v128.load(ptr), maxV));
    v128.store(ptr, e);
    sumV = f32x4.add(sumV, e);
  }
  let sum = f32x4.extract_lane(sumV, 0) + f32x4.extract_lane(sumV, 1) + f32x4.extract_lane(sumV, 2) + f32x4.extract_lane(sumV, 3);
  for (; p < n; p++) {
    const ptr = scores + (<usize>p << 2);
    const e = f32x4.extract_lane(expNonPositive_f32x4(f32x4.splat(load<f32>(ptr) - max)), 0);
    store<f32>(ptr, e);
    sum += e;
  }
  return sum;
}

function zero_f32(ptr: usize, n: i32): void {
  memory.fill(ptr, 0, <usize>n << 2);
}

/**
 * Store one position's row: src (n f32) -> dst (one cache row of `type`, nPadded values), written as nSegments
 * segments of nPadded / nSegments values (whole blocks each), segment s at dst + s·segmentStride: one segment for a
 * position-major row, one per kv head for a head-major layer (each head in its own plane). The bytes of every block
 * are the same either way (blocks are quantized independently).
 * rotN > 0: dst row = quantize(H_rotN · src) chunk by chunk (scratch receives the rotated row).
 * nPadded > n: the row is zero-padded to whole blocks in scratch first.  scratch: (nPadded) f32.
 * Returns false for an unknown type.
 */
export function storeRow_packed(
  type: i32, src: usize, n: i32, nPadded: i32, rotN: i32, scratch: usize, dst: usize, nSegments: i32, segmentStride: i32,
): bool {
  let from = src;
  if (rotN > 0) {
    fwht_f32(src, scratch, rotN, n / rotN);
    from = scratch;
  } else if (nPadded > n) {
    memory.copy(scratch, src, <usize>n << 2);
    from = scratch;
  }
  if (nPadded > n) zero_f32(scratch + (<usize>n << 2), nPadded - n);
  const segmentValues = nPadded / nSegments;
  for (let s = 0; s < nSegments; s++) {
    const ok = quantizeRow_byType(type, from + (<usize>(s * segmentValues) << 2), dst + <usize>s * <usize>segmentStride, segmentValues);
    if (!ok) return false;
  }
  return true;
}

/**
 * Store rows [itemStart, itemEnd) of a batch: row r of src (srcStride bytes apart, n f32 each) -> position r of dst
 * (dstStride bytes apart), in segments as storeRow_packed. scratch: (nPadded) f32, one per thread.
 */
export function storeRows_packed(
  itemStart: i32, itemEnd: i32, scratch: usize, type: i32, src: usize, srcStride: i32, n: i32, nPadded: i32, rotN: i32,
  dst: usize, dstStride: i32, nSegments: i32, segmentStride: i32,
): void {
  for (let r = itemStart; r < itemEnd; r++) {
    storeRow_packed(
      type, src + <usize>r * <usize>srcStride, n, nPadded, rotN, scratch, dst + <usize>r * <usize>dstStride, nSegments, segmentStride,
    );
  }
}

/**
 * out = softmax(q·Kᵀ · scale) V for query heads [headStart, headEnd), over positions [0, nPos) of one layer, one head at
 * a time (the reference path; attention-gqa.ts computes the same numbers for a whole query group at once).
 *   q, out:      (nHeads, headDim) f32;  query head h reads kv head h / (nHeads / nKvHeads)
 *   kRows:       (nPos, kRowBytes) packed K rows of type kType (kBlock values per kBlockBytes-byte block)
 *   vRows:       (nPos, vRowBytes) packed V rows of type vType
 *   qCover:      (maxCoverK) f32 scratch;  qPartner: the same values in kPartnerType
 *   scores:      (nPos) f32 scratch;  acc: (maxCoverV) f32 scratch
 * where maxCover = (headDim / block + 2) * block values at most.
 */
export function attend_packed(
  q: usize, out: usize, nPos: i32, headStart: i32, headEnd: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scale: f32,
  kRows: usize, kRowBytes: i32, kType: i32, kPartnerType: i32, kBlock: i32, kBlockBytes: i32,
  vRows: usize, vRowBytes: i32, vType: i32, vBlock: i32, vBlockBytes: i32,
  qCover: usize, qPartner: usize, scores: usize, acc: usize,
): void {
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headDim << 2;
  for (let h = headStart; h < headEnd; h++) {
    attendHead(
      q + <usize>h * headBytes, out + <usize>h * headBytes, nPos, (h / group) * headDim, headDim, scale,
      kRows, kRowBytes, kType, kPartnerType, kBlock, kBlockBytes, vRows, vRowBytes, vType, vBlock, vBlockBytes,
      qCover, qPartner, scores, acc,
    );
  }
}

/**
 * The per-head path over a batch: items [itemStart, itemEnd) are (token t, query head h) = (item / nHeads, item % nHeads);
 * token t's query row is q + t·nHeads·headDim·4 and it attends positions [0, firstPos + t]. `desc` is the layer
 * descriptor (attention-common.ts); scratch: attendHeadsScratchBytes bytes of this thread.
 *   q, out: (nTokens, nHeads·headDim) f32
 */
export function attendHeads_packed(itemStart: i32, itemEnd: i32, scratch: usize, desc: usize, q: usize, out: usize, firstPos: i32): void {
  const nHeads = descI32(desc, D_N_HEADS);
  const headDim = descI32(desc, D_HEAD_DIM);
  const group = nHeads / descI32(desc, D_N_KV_HEADS);
  const maxPos = descI32(desc, D_MAX_POS);
  const rotK = descI32(desc, D_ROT_K);
  const rotV = descI32(desc, D_ROT_V);
  const headMajor = descI32(desc, D_HEAD_MAJOR) != 0;
  const headBytes = <usize>headDim << 2;
  const cover = align16(<usize>maxCoverValues(headDim) << 2);
  const scores = scratch;
  const qCover = scores + align16(<usize>maxPos << 2);
  const qPartner = qCover + cover;
  const acc = qPartner + cover;
  const qRot = acc + cover;
  for (let item = itemStart; item < itemEnd; item++) {
    const t = item / nHeads;
    const h = item % nHeads;
    const offset = (<usize>t * <usize>nHeads + <usize>h) * headBytes;
    let qHead = q + offset;
    const outHead = out + offset;
    if (rotK > 0) {
      fwht_f32(qHead, qRot, rotK, headDim / rotK);
      qHead = qRot;
    }
    // kv head g's slice: value g·headDim of each row, or value 0 of g's own plane (head-major)
    const g = h / group;
    const kRows = <usize>descI32(desc, D_K_ROWS) + (headMajor ? <usize>g * <usize>descI32(desc, D_K_HEAD_STRIDE) : 0);
    const vRows = <usize>descI32(desc, D_V_ROWS) + (headMajor ? <usize>g * <usize>descI32(desc, D_V_HEAD_STRIDE) : 0);
    attendHead(
      qHead, outHead, firstPos + t + 1, headMajor ? 0 : g * headDim, headDim, load<f32>(desc + D_SCALE),
      kRows, descI32(desc, D_K_ROW_BYTES), descI32(desc, D_K_TYPE), descI32(desc, D_K_PARTNER),
      descI32(desc, D_K_BLOCK), descI32(desc, D_K_BLOCK_BYTES),
      vRows, descI32(desc, D_V_ROW_BYTES), descI32(desc, D_V_TYPE),
      descI32(desc, D_V_BLOCK), descI32(desc, D_V_BLOCK_BYTES),
      qCover, qPartner, scores, acc,
    );
    if (rotV > 0) fwht_f32(outHead, outHead, rotV, headDim / rotV);
  }
}

/** One query head (headDim f32 at qHead) over positions [0, nPos); its kv slice starts at value `start` of a row. */
function attendHead(
  qHead: usize, outHead: usize, nPos: i32, start: i32, headDim: i32, scale: f32,
  kRows: usize, kRowBytes: i32, kType: i32, kPartnerType: i32, kBlock: i32, kBlockBytes: i32,
  vRows: usize, vRowBytes: i32, vType: i32, vBlock: i32, vBlockBytes: i32,
  qCover: usize, qPartner: usize, scores: usize, acc: usize,
): void {
  const headBytes = <usize>headDim << 2;
  if (nPos <= 0) {
    zero_f32(outHead, headDim);
    return;
  }

  // --- scores from packed K: query head -> dot partner over the covering blocks
  const kb0 = start / kBlock;
  const kb1 = (start + headDim + kBlock - 1) / kBlock;
  const kn = (kb1 - kb0) * kBlock;
  const kOff = start - kb0 * kBlock;
  let qSrc = qHead;
  if (kn != headDim) {
    zero_f32(qCover, kn);
    memory.copy(qCover + (<usize>kOff << 2), qHead, headBytes);
    qSrc = qCover;
  }
  quantizeRow_byType(kPartnerType, qSrc, qPartner, kn);
  let kRow = kRows + <usize>kb0 * <usize>kBlockBytes;
  let maxScore: f32 = -Infinity;
  for (let p = 0; p < nPos; p++) {
    const s = dot_byType(kType, kRow, qPartner, kn) * scale;
    store<f32>(scores + (<usize>p << 2), s);
    if (s > maxScore) maxScore = s;
    kRow += <usize>kRowBytes;
  }
  const sum = expShiftedSum_f32(scores, nPos, maxScore);

  // --- weighted sum from packed V over the covering blocks
  const vb0 = start / vBlock;
  const vb1 = (start + headDim + vBlock - 1) / vBlock;
  const vn = (vb1 - vb0) * vBlock;
  const vOff = start - vb0 * vBlock;
  const accHead = vn == headDim ? outHead : acc;
  zero_f32(accHead, vn);
  let vRow = vRows + <usize>vb0 * <usize>vBlockBytes;
  for (let p = 0; p < nPos; p++) {
    axpy_byType(vType, accHead, load<f32>(scores + (<usize>p << 2)), vRow, vn);
    vRow += <usize>vRowBytes;
  }
  const inv: f32 = sum > 0 ? <f32>1 / sum : 0;
  const from = accHead + (<usize>vOff << 2);
  for (let i = 0; i < headDim; i++) {
    const o = <usize>i << 2;
    store<f32>(outHead + o, load<f32>(from + o) * inv);
  }
}
