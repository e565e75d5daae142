// q8_0 weights repacked four rows at a time ("q8_0_x4"), for products whose i32 lanes are the four rows, against the
// input in a "split" layout of its own: a relaxed dot of four input values (splatted) against four weights from each
// row lands row r's partial sum in lane r, so nothing is re-laid out per call (matmulWide_q8_0 widens every weight row
// into |w| and sign masks per call, more than a matvec's whole time at two to four tokens) and a block's sums need no
// horizontal adds. Same bytes as four q8_0 rows (34 bytes per row and block), repacked in place at load.
//
// The relaxed dot multiplies int8 lanes of its first operand by lanes of its second that the spec makes exact only in
// 0..127 (any engine reads those alike); so a weight and an input value, both int8, take two dots (below: the split
// input). Engines that read the second operand as u8 and sum the four products without saturating (Node 24's V8 on
// x64 with AVX-VNNI: vpdpbusd; Node 22's emits pmaddubsw, which saturates) take one: the tiles hold w + 128 and the
// input x itself ("offset weights"). Each instance probes its engine at instantiation (probeOffsetDots: products whose
// 8-bit second operand shows both the sign and the saturation) and takes the offset layout where the probe holds;
// every instance of a process runs on the same engine and so chooses the same. Both give the same integers, so the
// same bits.
//
// Tile = four rows r0..r3 (4t .. 4t + 3): for each block b, 136 bytes:
//   [0, 8)      (4) fp16 d of rows r0..r3
//   [8, 136)    vector m (m = 0..7) at 8 + 16m holds, at 4r + i, row r's int8 value 4m + i of block b
//               (offset weights: that value + 128, as u8)
// Matrices of more than SEGMENT_MAX_BLOCKS (96) blocks a row (TinyLlama's ffn_down: 176) keep the same tile blocks in
// another order, so that a product streams them in memory order while its input stays in L1: tiles in groups of
// GROUP_TILES (8; a matrix's last group may hold fewer), and within a group of g tiles, column segment by segment:
// segment s holds blocks [sS, min(nb, sS + S)) of each of the group's tiles in turn, S = segmentBlocks(nb) (nb split
// into ⌈nb / 96⌉ near-equal segments, rounded up to a multiple of 4). Tile k's block b (in segment s) sits at
//   group + (sS × g + k × len(s) + b − sS) × 136      (len(s): the segment's blocks; every segment but the last is S)
// Rows up to 96 blocks are one segment, so their groups are plain tiles one after another (tile t at t × nb × 136).
// Products over segmented matrices take row ranges on group boundaries (rowStart a multiple of 32; rowEnd too, or the
// matrix's last row: the threads' split is, ROW_GRAIN), and keep each tile's phase sums between segments in the
// calling thread's scratch (tiledScratchBytes()). A 2048 × 5632 matrix (TinyLlama's ffn_down), 4 tokens, one
// thread (weight-kernels.js --cols 5632): 40.1 → 45.9 GMAC/s; in a 4-stream step on two threads 71–78 → 86–89, as
// fast per MAC as its 2048-column products (its 28 KiB of input and a 24 KiB tile row no longer share a 48 KiB L1).
// Split input row (quantizeRowsSplit_q8_0), per block of 32 values, 68 bytes:
//   [0, 32)     x⁺ = max(x, 0) (u8, 0..127)      [32, 64)  x⁻ = x⁺ − x (0..127)      [64, 68)  d_x as f32
// (offset weights, 40 bytes a block: [0, 32) x (i8), [32, 36) c = −128 × Σ x (i32), [36, 40) d_x as f32)
// Rows are nb × 68 bytes apart in both layouts (what Linear and the format table give as the stride); the offset
// layout's blocks fill the first nb × 40 of them, so a 4-token input of ffn_down's 5632 values is 28 KiB instead of
// 47 KiB and stays in a 48 KiB L1 beside the streamed weights (TinyLlama's 2048 × 5632 products in a 4-stream step:
// 55 → 77 GMAC/s on two threads; its 2048-column ones 8-15% faster).
// x is the q8_0 quantization of the activations (quantizeRow_q8_0). Σ w·x = Σ w·x⁺ − Σ w·x⁻ with x⁺ and x⁻
// the relaxed dot's 0..127 operand and the weights as they are (−128 included): the same integer as rowdot.ts's
// (its splitSignBlockSums splits the same way, per row), exact in either build (dotLevelsAddEither). A q8_0 value
// −128 (quantizeRow_q8_0 writes it only in a block whose fp16 scale is 0) gives x⁻ = 128, outside the exact range:
// that block's term is ±0 whatever its integer, as in rowdot.ts. With offset weights Σ w·x = c + Σ x·(w + 128),
// exact for every int8 x (|Σ| < 2^20).
//
// Floating-point order: rowdot.ts's for 32-value blocks: term(b) = f32(Σ w·x) × (d_w × d_x); L_k = the sum of the
// terms of blocks k, k + 4, k + 8, ... in order (rowdot's f32x4 lane k); the row's value (L0 + L1) + (L2 + L3). Here
// each L_k is an f32x4 accumulator whose lanes are the four rows; so matvec_q8_0_x4 and matmul_q8_0_x4 equal
// matvec_q8_0 over the rows before repacking, bit for bit.
import { dotLevelsAddEither, f16SignedBitsToF32x4, hsumI32x4, loadF16 } from "./common";
import { quantizeRow_q8_0 } from "./q8_0";
import { GROUP_ROWS, moveTiles } from "./tiles";

const ROW_BLOCK: usize = 34; // q8_0 bytes per row and block
const TILE_BLOCK: usize = 136; // four rows' block
/** Bytes per block of 32 values of the split input (and the row stride: nb × SPLIT_BLOCK in both layouts). */
const SPLIT_BLOCK: usize = 68;
/** Bytes per block of the offset weights' input (x, c, d_x). */
const OFFSET_BLOCK: usize = 40;
/** Where d_x sits in an input block of either layout. */
// @ts-ignore: decorator
@inline function dxAt(offset: bool): usize {
  return offset ? 36 : 64;
}
/** Bytes per input block of either layout. */
// @ts-ignore: decorator
@inline function inputBlock(offset: bool): usize {
  return offset ? OFFSET_BLOCK : SPLIT_BLOCK;
}
/** Tokens a batched product takes across every tile before the next ones: their split rows stay in the core's cache. */
const TOKEN_CHUNK: i32 = 64;
/** Rows of more blocks than this are split into column segments (file comment). */
const SEGMENT_MAX_BLOCKS: i32 = 96;
/** Tiles per group of a segmented matrix (file comment): 8 (tiles.ts GROUP_ROWS; src/model/linear.ts's ROW_GRAIN). */
const GROUP_TILES: i32 = GROUP_ROWS >> 2;
/** Bytes of one tile's saved phase sums for four tokens (16 f32x4: token t's L_k at (4t + k) × 16). */
const TILE_SUMS_BYTES: usize = 256;
/** A thread's scratch for the products: the phase sums of a group's tiles for a chunk of tokens. */
const TILED_SCRATCH_BYTES: i32 = GROUP_TILES * (TOKEN_CHUNK >> 2) * <i32>TILE_SUMS_BYTES;

/**
 * Bytes of the scratch every tiled product (matvec_<fmt>_x4, matmul_<fmt>_x4) takes last, the calling thread's own
 * (src/model/linear.ts allocates it): the sums of segmented q8_0 tiles wait there between segments (q4_K's tiles are
 * one segment and leave it alone).
 */
export function tiledScratchBytes(): i32 {
  return TILED_SCRATCH_BYTES;
}

/** Blocks per column segment of rows of nb blocks (file comment): nb itself up to SEGMENT_MAX_BLOCKS. */
// @ts-ignore: decorator
@inline function segmentBlocks(nb: i32): i32 {
  const segments = (nb + SEGMENT_MAX_BLOCKS - 1) / SEGMENT_MAX_BLOCKS;
  return (((nb + segments - 1) / segments) + 3) & ~3;
}

/** Where tile k's blocks of the segment starting at block s0 (len blocks) begin, in a group of g tiles at group. */
// @ts-ignore: decorator
@inline function segmentTile(group: usize, g: i32, k: i32, s0: i32, len: i32): usize {
  return group + (<usize>s0 * <usize>g + <usize>k * <usize>len) * TILE_BLOCK;
}
/** Added to every weight in the offset layout (as u8 it is the weight's byte with its top bit flipped). */
const WEIGHT_OFFSET: i32 = 128;

/**
 * Whether this engine's i32x4.relaxed_dot_i8x16_i7x16_add_s reads its second operand as u8 and sums the four products
 * of a lane without saturating (the relaxed build only): 255 against 127 four times (pmaddubsw's i16 pair sums would
 * saturate at 32767), against −128 (a signed reading of 255 gives −1 × −128), and against small values of both signs.
 */
function probeOffsetDots(): bool {
  if (!ASC_FEATURE_RELAXED_SIMD) return false;
  const x = i8x16(127, 127, 127, 127, -128, -128, -128, -128, 1, 2, 3, 4, -1, -2, -3, -4);
  const sums = i32x4.relaxed_dot_i8x16_i7x16_add_s(x, i8x16.splat(<i8>255), i32x4.splat(0));
  return i32x4.extract_lane(sums, 0) == 4 * 127 * 255 && i32x4.extract_lane(sums, 1) == -4 * 128 * 255
    && i32x4.extract_lane(sums, 2) == 10 * 255 && i32x4.extract_lane(sums, 3) == -10 * 255;
}

/** Whether this engine allows offset weights (probeOffsetDots, once per instance). */
const offsetDotsExact: bool = probeOffsetDots();
/** This instance's layout (file comment): tiles of w + 128 against x itself, one dot per 16 products. */
let offsetWeights: bool = offsetDotsExact;

/**
 * The two layouts as class types for the products' loops (never instantiated: tiles.ts's pattern), so that each loop
 * is compiled once per layout with no layout test inside (a test of offsetWeights around inlined loops was folded into
 * their innermost loop by the optimizer).
 */
class OffsetWeights {
  // @ts-ignore: decorator
  @inline offset(): bool { return true; }
}
class SplitInput {
  // @ts-ignore: decorator
  @inline offset(): bool { return false; }
}

/** Whether this instance's tiles and split input are the offset layout (file comment). */
export function offsetWeights_q8_0_x4(): bool {
  return offsetWeights;
}

/**
 * Asks for the offset layout (on) or the split input (off) before anything is repacked or split (tests: both
 * layouts on one engine); the offset one only where the probe holds. Returns the layout now in use.
 */
export function useOffsetWeights_q8_0_x4(on: bool): bool {
  offsetWeights = on && offsetDotsExact;
  return offsetWeights;
}

/**
 * Rows [rowStart, rowEnd) of f32 (nRows, cols) at src quantized to q8_0 (quantizeRow_q8_0) at q8 ((nRows, q8_0 row
 * bytes)) and split (file comment) at dst ((nRows, cols / 32 × 68); offset layout: each row's first cols / 32 × 40
 * bytes): one row range per thread.
 */
export function quantizeRowsSplit_q8_0(src: usize, q8: usize, dst: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  const nb = <usize>(cols >> 5);
  for (let r = rowStart; r < rowEnd; r++) {
    const row = q8 + <usize>r * nb * ROW_BLOCK; // (nb, 34) q8_0 blocks
    quantizeRow_q8_0(src + (<usize>r * <usize>cols << 2), row, cols);
    if (offsetWeights) offsetRow(row, dst + <usize>r * nb * SPLIT_BLOCK, nb);
    else splitRow(row, dst + <usize>r * nb * SPLIT_BLOCK, nb);
  }
}

/** The q8_0 row of nb blocks at src in the split layout at dst ((nb, 68)). */
// @ts-ignore: decorator
@inline function splitRow(src: usize, dst: usize, nb: usize): void {
  const zero = i32x4.splat(0);
  for (let b: usize = 0; b < nb; b++) {
    const block = src + b * ROW_BLOCK;
    const o = dst + b * SPLIT_BLOCK;
    const x0 = v128.load(block, 2); // (16) i8: values 0-15
    const x1 = v128.load(block, 18); // values 16-31
    const p0 = i8x16.max_s(x0, zero);
    const p1 = i8x16.max_s(x1, zero);
    v128.store(o, p0);
    v128.store(o, p1, 16);
    v128.store(o, i8x16.sub(p0, x0), 32);
    v128.store(o, i8x16.sub(p1, x1), 48);
    store<f32>(o, loadF16(block), 64);
  }
}

/** The q8_0 row of nb blocks at src in the input of offset weights at dst ((nb, 40)): x, −128 × Σ x, d_x. */
// @ts-ignore: decorator
@inline function offsetRow(src: usize, dst: usize, nb: usize): void {
  for (let b: usize = 0; b < nb; b++) {
    const block = src + b * ROW_BLOCK;
    const o = dst + b * OFFSET_BLOCK;
    const x0 = v128.load(block, 2); // (16) i8: values 0-15
    const x1 = v128.load(block, 18); // values 16-31
    v128.store(o, x0);
    v128.store(o, x1, 16);
    const sums = i32x4.add(i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(x0)), i32x4.extadd_pairwise_i16x8_s(i16x8.extadd_pairwise_i8x16_s(x1))); // (4) i32
    store<i32>(o, -WEIGHT_OFFSET * hsumI32x4(sums), 32);
    store<f32>(o, loadF16(block), 36);
  }
}

/** The rows' block term f32(Σ w·x) × (d_w × d_x) for the input block at xb; dw: the rows' d as f32x4. */
// @ts-ignore: decorator
@inline function blockTerm(offset: bool, sums: v128, dw: v128, xb: usize): v128 {
  return f32x4.mul(f32x4.convert_i32x4_s(sums), f32x4.mul(dw, v128.load32_splat(xb + dxAt(offset))));
}

/** Block terms of tokens 1..3 from blockTerms (module globals: each thread's instance has its own). */
let termT1: v128 = f32x4.splat(0);
let termT2: v128 = f32x4.splat(0);
let termT3: v128 = f32x4.splat(0);

/**
 * The rows' terms (f32x4) of the tile block at tb for n = 1..4 tokens (split blocks at xb + t·xs): returns token 0's,
 * termT1..termT3 the others'. Each weight vector is loaded once for the n tokens; every token has its own dot chains
 * (split input: its x⁺ and x⁻ chains; offset weights: one chain, started at its c).
 */
// @ts-ignore: decorator
@inline function blockTerms(offset: bool, n: i32, tb: usize, xb: usize, xs: usize): v128 {
  let wp = tb + 8; // (8, 16) i8: vector m at wp + 16m (row r's values 4m .. 4m + 3 at 4r)
  const wEnd = wp + 128;
  let xp = xb; // token 0's values 4m .. 4m + 3 at xp (split input: x⁺, x⁻ 32 on), xp advancing 4 a step
  const zero = i32x4.splat(0);
  // (4) i32: the rows' Σ w·x⁺ (offset weights: c + Σ x·(w + 128)) and Σ w·x⁻ of the block, token 0 .. token 3
  let p0 = offset ? v128.load32_splat(xb, 32) : zero, q0 = zero;
  let p1 = offset && n > 1 ? v128.load32_splat(xb + xs, 32) : zero, q1 = zero;
  let p2 = offset && n > 2 ? v128.load32_splat(xb + 2 * xs, 32) : zero, q2 = zero;
  let p3 = offset && n > 3 ? v128.load32_splat(xb + 3 * xs, 32) : zero, q3 = zero;
  do {
    const v = v128.load(wp);
    if (offset) { // x first, the weights + 128 as the 8-bit operand: exact where the probe holds (offsetWeights)
      p0 = dotLevelsAddEither(v128.load32_splat(xp), v, p0);
      if (n > 1) p1 = dotLevelsAddEither(v128.load32_splat(xp + xs), v, p1);
      if (n > 2) p2 = dotLevelsAddEither(v128.load32_splat(xp + 2 * xs), v, p2);
      if (n > 3) p3 = dotLevelsAddEither(v128.load32_splat(xp + 3 * xs), v, p3);
    } else {
      p0 = dotLevelsAddEither(v, v128.load32_splat(xp), p0);
      q0 = dotLevelsAddEither(v, v128.load32_splat(xp, 32), q0);
      if (n > 1) {
        const x1 = xp + xs;
        p1 = dotLevelsAddEither(v, v128.load32_splat(x1), p1);
        q1 = dotLevelsAddEither(v, v128.load32_splat(x1, 32), q1);
      }
      if (n > 2) {
        const x2 = xp + 2 * xs;
        p2 = dotLevelsAddEither(v, v128.load32_splat(x2), p2);
        q2 = dotLevelsAddEither(v, v128.load32_splat(x2, 32), q2);
      }
      if (n > 3) {
        const x3 = xp + 3 * xs;
        p3 = dotLevelsAddEither(v, v128.load32_splat(x3), p3);
        q3 = dotLevelsAddEither(v, v128.load32_splat(x3, 32), q3);
      }
    }
    wp += 16;
    xp += 4;
  } while (wp < wEnd);
  const dw = f16SignedBitsToF32x4(v128.load16x4_s(tb)); // (4) f32: the rows' d
  if (n > 1) termT1 = blockTerm(offset, offset ? p1 : i32x4.sub(p1, q1), dw, xb + xs);
  if (n > 2) termT2 = blockTerm(offset, offset ? p2 : i32x4.sub(p2, q2), dw, xb + 2 * xs);
  if (n > 3) termT3 = blockTerm(offset, offset ? p3 : i32x4.sub(p3, q3), dw, xb + 3 * xs);
  return blockTerm(offset, offset ? p0 : i32x4.sub(p0, q0), dw, xb);
}

/**
 * The tile's four rows for n = 1..4 tokens (split rows at x0 + t·xs) over the nb blocks at tile (a column segment:
 * x0 is the input at its first block, a multiple of 4, so phases continue), into out rows o0 + t·os: one sweep over
 * the blocks in memory order (four passes over the blocks of one phase each measured 2× slower on matrices streamed
 * from memory), each token's L_0..L_3 in its own accumulators. They start at 0 (first) or from the sums saved at
 * sums ((n, 4) f32x4) by the segment before, and end as the rows' values (last) or saved there for the next one.
 */
// @ts-ignore: decorator
@inline function tileTokens(offset: bool, n: i32, tile: usize, nb: i32, x0: usize, xs: usize, o0: usize, os: usize, sums: usize, first: bool, last: bool): void {
  let t0L0 = f32x4.splat(0), t0L1 = f32x4.splat(0), t0L2 = f32x4.splat(0), t0L3 = f32x4.splat(0); // (4) f32: the rows' L_0..L_3, token 0
  let t1L0 = f32x4.splat(0), t1L1 = f32x4.splat(0), t1L2 = f32x4.splat(0), t1L3 = f32x4.splat(0); // token 1
  let t2L0 = f32x4.splat(0), t2L1 = f32x4.splat(0), t2L2 = f32x4.splat(0), t2L3 = f32x4.splat(0);
  let t3L0 = f32x4.splat(0), t3L1 = f32x4.splat(0), t3L2 = f32x4.splat(0), t3L3 = f32x4.splat(0);
  if (!first) {
    t0L0 = v128.load(sums); t0L1 = v128.load(sums, 16); t0L2 = v128.load(sums, 32); t0L3 = v128.load(sums, 48);
    if (n > 1) { t1L0 = v128.load(sums, 64); t1L1 = v128.load(sums, 80); t1L2 = v128.load(sums, 96); t1L3 = v128.load(sums, 112); }
    if (n > 2) { t2L0 = v128.load(sums, 128); t2L1 = v128.load(sums, 144); t2L2 = v128.load(sums, 160); t2L3 = v128.load(sums, 176); }
    if (n > 3) { t3L0 = v128.load(sums, 192); t3L1 = v128.load(sums, 208); t3L2 = v128.load(sums, 224); t3L3 = v128.load(sums, 240); }
  }
  const xBlock = inputBlock(offset);
  let tb = tile;
  let xb = x0;
  const tileEnd = tile + <usize>nb * TILE_BLOCK;
  const groupsEnd = tile + <usize>(nb & ~3) * TILE_BLOCK;
  while (tb < groupsEnd) {
    let t = blockTerms(offset, n, tb, xb, xs); // phase 0
    t0L0 = f32x4.add(t0L0, t);
    if (n > 1) t1L0 = f32x4.add(t1L0, termT1);
    if (n > 2) t2L0 = f32x4.add(t2L0, termT2);
    if (n > 3) t3L0 = f32x4.add(t3L0, termT3);
    t = blockTerms(offset, n, tb + TILE_BLOCK, xb + xBlock, xs); // phase 1
    t0L1 = f32x4.add(t0L1, t);
    if (n > 1) t1L1 = f32x4.add(t1L1, termT1);
    if (n > 2) t2L1 = f32x4.add(t2L1, termT2);
    if (n > 3) t3L1 = f32x4.add(t3L1, termT3);
    t = blockTerms(offset, n, tb + 2 * TILE_BLOCK, xb + 2 * xBlock, xs); // phase 2
    t0L2 = f32x4.add(t0L2, t);
    if (n > 1) t1L2 = f32x4.add(t1L2, termT1);
    if (n > 2) t2L2 = f32x4.add(t2L2, termT2);
    if (n > 3) t3L2 = f32x4.add(t3L2, termT3);
    t = blockTerms(offset, n, tb + 3 * TILE_BLOCK, xb + 3 * xBlock, xs); // phase 3
    t0L3 = f32x4.add(t0L3, t);
    if (n > 1) t1L3 = f32x4.add(t1L3, termT1);
    if (n > 2) t2L3 = f32x4.add(t2L3, termT2);
    if (n > 3) t3L3 = f32x4.add(t3L3, termT3);
    tb += 4 * TILE_BLOCK;
    xb += 4 * xBlock;
  }
  if (tb < tileEnd) { // the last 1..3 blocks: phases 0..2
    let t = blockTerms(offset, n, tb, xb, xs);
    t0L0 = f32x4.add(t0L0, t);
    if (n > 1) t1L0 = f32x4.add(t1L0, termT1);
    if (n > 2) t2L0 = f32x4.add(t2L0, termT2);
    if (n > 3) t3L0 = f32x4.add(t3L0, termT3);
    if (tb + TILE_BLOCK < tileEnd) {
      t = blockTerms(offset, n, tb + TILE_BLOCK, xb + xBlock, xs);
      t0L1 = f32x4.add(t0L1, t);
      if (n > 1) t1L1 = f32x4.add(t1L1, termT1);
      if (n > 2) t2L1 = f32x4.add(t2L1, termT2);
      if (n > 3) t3L1 = f32x4.add(t3L1, termT3);
    }
    if (tb + 2 * TILE_BLOCK < tileEnd) {
      t = blockTerms(offset, n, tb + 2 * TILE_BLOCK, xb + 2 * xBlock, xs);
      t0L2 = f32x4.add(t0L2, t);
      if (n > 1) t1L2 = f32x4.add(t1L2, termT1);
      if (n > 2) t2L2 = f32x4.add(t2L2, termT2);
      if (n > 3) t3L2 = f32x4.add(t3L2, termT3);
    }
  }
  if (!last) {
    v128.store(sums, t0L0); v128.store(sums, t0L1, 16); v128.store(sums, t0L2, 32); v128.store(sums, t0L3, 48);
    if (n > 1) { v128.store(sums, t1L0, 64); v128.store(sums, t1L1, 80); v128.store(sums, t1L2, 96); v128.store(sums, t1L3, 112); }
    if (n > 2) { v128.store(sums, t2L0, 128); v128.store(sums, t2L1, 144); v128.store(sums, t2L2, 160); v128.store(sums, t2L3, 176); }
    if (n > 3) { v128.store(sums, t3L0, 192); v128.store(sums, t3L1, 208); v128.store(sums, t3L2, 224); v128.store(sums, t3L3, 240); }
    return;
  }
  v128.store(o0, rowValues(t0L0, t0L1, t0L2, t0L3));
  if (n > 1) v128.store(o0 + os, rowValues(t1L0, t1L1, t1L2, t1L3));
  if (n > 2) v128.store(o0 + 2 * os, rowValues(t2L0, t2L1, t2L2, t2L3));
  if (n > 3) v128.store(o0 + 3 * os, rowValues(t3L0, t3L1, t3L2, t3L3));
}

/** The rows' values (L0 + L1) + (L2 + L3). */
// @ts-ignore: decorator
@inline function rowValues(l0: v128, l1: v128, l2: v128, l3: v128): v128 {
  return f32x4.add(f32x4.add(l0, l1), f32x4.add(l2, l3));
}

/**
 * out[r] = dot(W[r], x) for r in [rowStart, rowEnd) over a repacked matrix (x: a split row); rowStart and rowEnd
 * are multiples of 4 (the threads' split is, and only matrices of whole tiles are repacked), on group boundaries for a
 * segmented matrix (file comment). scratch: tiledScratchBytes() of the calling thread's own.
 */
export function matvec_q8_0_x4(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, scratch: usize): void {
  if (offsetWeights) matmulTiles<OffsetWeights>(w, x, out, rowStart, rowEnd, cols, 1, 0, 0, scratch);
  else matmulTiles<SplitInput>(w, x, out, rowStart, rowEnd, cols, 1, 0, 0, scratch);
}

/**
 * out[t][r] = matvec_q8_0_x4 of token t (X: nTokens split rows xStride bytes apart; out rows outStride bytes apart);
 * equal to it per token bit for bit. Tokens in chunks of TOKEN_CHUNK, each across every group of the range, column
 * segment by segment (one segment: tile by tile); within a tile's segment, four tokens a pass, then the one to three
 * left over in one pass. scratch as matvec_q8_0_x4's.
 */
export function matmul_q8_0_x4(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32, scratch: usize): void {
  if (offsetWeights) matmulTiles<OffsetWeights>(w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride, scratch);
  else matmulTiles<SplitInput>(w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride, scratch);
}

/** matmul_q8_0_x4 (and matvec_q8_0_x4: one token) in layout L (OffsetWeights or SplitInput). */
function matmulTiles<L>(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32, scratch: usize): void {
  const offset = changetype<L>(0).offset();
  const nb = cols >> 5;
  const segment = segmentBlocks(nb);
  const tileBytes = <usize>nb * TILE_BLOCK;
  const xBlock = inputBlock(offset);
  const xs = <usize>xStride;
  const os = <usize>outStride;
  for (let t0 = 0; t0 < nTokens; t0 += TOKEN_CHUNK) {
    const t1 = min(nTokens, t0 + TOKEN_CHUNK);
    for (let r = rowStart; r < rowEnd; r += GROUP_TILES << 2) {
      const g = min(GROUP_TILES, (rowEnd - r) >> 2); // the group's tiles
      const group = w + <usize>(r >> 2) * tileBytes;
      for (let s0 = 0; s0 < nb; s0 += segment) {
        const len = min(segment, nb - s0);
        for (let k = 0; k < g; k++) {
          const sums = scratch + <usize>(k * (TOKEN_CHUNK >> 2)) * TILE_SUMS_BYTES; // (TOKEN_CHUNK / 4, 256 bytes) of tile k
          tileTokenRange(offset, segmentTile(group, g, k, s0, len), len, x + <usize>s0 * xBlock, xs, out + (<usize>(r + (k << 2)) << 2), os, t0, t1, sums, s0 == 0, s0 + len == nb);
        }
      }
    }
  }
}

/** tileTokens over tokens [t0, t1): four a pass, then the one to three left over in one pass; each pass's sums at sums + 256 × (its first token − t0) / 4. */
// @ts-ignore: decorator
@inline function tileTokenRange(offset: bool, tile: usize, nb: i32, x: usize, xs: usize, o: usize, os: usize, t0: i32, t1: i32, sums: usize, first: bool, last: bool): void {
  let t = t0;
  let s = sums;
  for (; t + 3 < t1; t += 4) {
    tileTokens(offset, 4, tile, nb, x + <usize>t * xs, xs, o + <usize>t * os, os, s, first, last);
    s += TILE_SUMS_BYTES;
  }
  const xt = x + <usize>t * xs;
  const ot = o + <usize>t * os;
  if (t1 - t == 3) tileTokens(offset, 3, tile, nb, xt, xs, ot, os, s, first, last);
  else if (t1 - t == 2) tileTokens(offset, 2, tile, nb, xt, xs, ot, os, s, first, last);
  else if (t1 - t == 1) tileTokens(offset, 1, tile, nb, xt, 0, ot, 0, s, first, last);
}

/**
 * The tile of rows [r, r + 4) laid back out as its four q8_0 rows at dst ((4, nb × 34)), for kernels that take rows
 * (matmulWide_q8_0_x4), in a product over rows [rowStart, rowEnd) (on group boundaries where the matrix is segmented:
 * its groups are found from them, as matmul_q8_0_x4 finds them).
 */
// @ts-ignore: decorator
@inline export function tileRows_q8_0(w: usize, rowStart: i32, rowEnd: i32, r: i32, nb: i32, dst: usize): void {
  const groupRow = rowStart + ((r - rowStart) & ~((GROUP_TILES << 2) - 1));
  const g = min(GROUP_TILES, (rowEnd - groupRow) >> 2);
  const group = w + <usize>(groupRow >> 2) * <usize>nb * TILE_BLOCK;
  const segment = segmentBlocks(nb);
  const rowBytes = <usize>nb * ROW_BLOCK;
  for (let s0 = 0; s0 < nb; s0 += segment) {
    const len = min(segment, nb - s0);
    segmentRows(segmentTile(group, g, (r - groupRow) >> 2, s0, len), dst + <usize>s0 * ROW_BLOCK, len, rowBytes);
  }
}

/**
 * The len tile blocks at tile as blocks of its four q8_0 rows at dst (rows rowBytes apart). Per block half, the four
 * tile vectors of four values of each row are transposed into each row's sixteen values.
 */
// @ts-ignore: decorator
@inline function segmentRows(tile: usize, dst: usize, len: i32, rowBytes: usize): void {
  const flip = i8x16.splat(offsetWeights ? <i8>WEIGHT_OFFSET : 0); // offset weights: w + 128 back to w
  for (let b = 0; b < len; b++) {
    const tb = tile + <usize>b * TILE_BLOCK;
    const o = dst + <usize>b * ROW_BLOCK; // row 0's block; row r's at o + r·rowBytes
    for (let r: usize = 0; r < 4; r++) store<u16>(o + r * rowBytes, load<u16>(tb + (r << 1)));
    for (let h: usize = 0; h < 2; h++) {
      const v = tb + 8 + (h << 6); // (4, 16) i8: vectors 4h .. 4h + 3, row r's four values at 4r
      const a = v128.xor(v128.load(v), flip);
      const b4 = v128.xor(v128.load(v, 16), flip);
      const c = v128.xor(v128.load(v, 32), flip);
      const d = v128.xor(v128.load(v, 48), flip);
      const ab01 = i32x4.shuffle(a, b4, 0, 4, 1, 5);
      const cd01 = i32x4.shuffle(c, d, 0, 4, 1, 5);
      const ab23 = i32x4.shuffle(a, b4, 2, 6, 3, 7);
      const cd23 = i32x4.shuffle(c, d, 2, 6, 3, 7);
      const q = o + 2 + (h << 4); // row 0's values 16h .. 16h + 15
      v128.store(q, i32x4.shuffle(ab01, cd01, 0, 1, 4, 5));
      v128.store(q + rowBytes, i32x4.shuffle(ab01, cd01, 2, 3, 6, 7));
      v128.store(q + 2 * rowBytes, i32x4.shuffle(ab23, cd23, 0, 1, 4, 5));
      v128.store(q + 3 * rowBytes, i32x4.shuffle(ab23, cd23, 2, 3, 6, 7));
    }
  }
}

/**
 * Repack `rows` (a multiple of 4) q8_0 rows of `cols` values at w in place into tiles, in groups and column segments
 * (file comment); scratch: a group's rows (32 × cols / 32 × 34 bytes: tiles.ts GROUP_ROWS). unpack_q8_0_x4 undoes it.
 */
export function repack_q8_0_x4(w: usize, rows: i32, cols: i32, scratch: usize): void {
  moveTiles<Q8Tile>(w, rows, cols, scratch, true, 5, ROW_BLOCK, segmentBlocks(cols >> 5));
}

export function unpack_q8_0_x4(w: usize, rows: i32, cols: i32, scratch: usize): void {
  moveTiles<Q8Tile>(w, rows, cols, scratch, false, 5, ROW_BLOCK, segmentBlocks(cols >> 5));
}

/** Row r's q8_0 block at rb into (pack) or out of the tile block at tb (tiles.ts moveTiles). */
// @ts-ignore: decorator
@final class Q8Tile {
  // @ts-ignore: decorator
  @inline moveBlock(tb: usize, rb: usize, r: i32, pack: bool): void {
    const flip: u32 = offsetWeights ? 0x80808080 : 0; // offset weights: each byte w <-> w + 128
    if (pack) store<u16>(tb + (<usize>r << 1), load<u16>(rb));
    else store<u16>(rb, load<u16>(tb + (<usize>r << 1)));
    for (let m = 0; m < 8; m++) { // values 4m .. 4m + 3: row bytes 2 + 4m at 8 + 16m + 4r
      const rq = rb + 2 + (<usize>m << 2);
      const tq = tb + 8 + (<usize>m << 4) + (<usize>r << 2);
      if (pack) store<u32>(tq, load<u32>(rq) ^ flip);
      else store<u32>(rq, load<u32>(tq) ^ flip);
    }
  }
}
