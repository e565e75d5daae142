/**
 * Scalar references for KV-cache tests: float64 attention on unquantized rows, and attention recomputed from the
 * bytes a KvCache stored, with the formats' scalar reference kernels (src/formats/reference) and float64 sums.
 */
import { getFormat, rowBytes } from "../../src/formats/table.js";
import { isOwnFormat, type BlockFormat } from "../../src/formats/types.js";
import { IQ2_E8, IQ2_NL, IQ3_E8, IQ3_NL, codebookScale } from "../../src/formats/reference/codebook.js";
import { readF16 } from "../../src/formats/reference/scalar.js";
import { KEY_GROUP, type KvCache } from "../../src/kv/cache.js";
import { rotateRowReference } from "../../src/kv/rotation.js";

export { seededRandom } from "./random.js";

/** n standard normal values (Box–Muller), as f32. */
export function gaussianRow(rand: () => number, n: number, sigma = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const u = Math.max(rand(), 1e-12);
    out[i] = sigma * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

export interface AttentionShape {
  nHeads: number;
  nKvHeads: number;
  headDim: number;
}

/**
 * Float64 attention: q (nHeads·headDim), k and v rows (nPos, kvDim); returns (nHeads·headDim).
 * Head h reads kv head h / (nHeads/nKvHeads); scores scaled by 1/√headDim.
 */
export function attentionF64(shape: AttentionShape, q: ArrayLike<number>, k: ArrayLike<number>[], v: ArrayLike<number>[]): Float64Array {
  const { nHeads, nKvHeads, headDim } = shape;
  const group = nHeads / nKvHeads;
  const out = new Float64Array(nHeads * headDim);
  const scale = 1 / Math.sqrt(headDim);
  for (let h = 0; h < nHeads; h++) {
    const off = Math.floor(h / group) * headDim;
    const scores = k.map((row) => {
      let s = 0;
      for (let i = 0; i < headDim; i++) s += q[h * headDim + i] * row[off + i];
      return s * scale;
    });
    const max = Math.max(...scores);
    const w = scores.map((s) => Math.exp(s - max));
    const sum = w.reduce((a, b) => a + b, 0);
    for (let p = 0; p < v.length; p++) {
      for (let i = 0; i < headDim; i++) out[h * headDim + i] += (w[p] / sum) * v[p][off + i];
    }
  }
  return out;
}

/** In-place orthonormal Walsh–Hadamard transform of each n-chunk, in float64. */
export function hadamardF64(row: Float64Array, n: number): void {
  const scale = 1 / Math.sqrt(n);
  for (let c = 0; c < row.length; c += n) {
    for (let span = 1; span < n; span <<= 1) {
      for (let i = 0; i < n; i += span << 1) {
        for (let j = 0; j < span; j++) {
          const u = row[c + i + j];
          const w = row[c + i + span + j];
          row[c + i + j] = u + w;
          row[c + i + span + j] = u - w;
        }
      }
    }
    for (let i = c; i < c + n; i++) row[i] *= scale;
  }
}

/** Exact rows for attentionFromStored: the f32 K and V rows as appended, the window's length, the sinks. */
export interface ExactWindow {
  k: Float32Array[];
  v: Float32Array[];
  window: number;
  sinks?: number;
  /** The exact rows' format (KvCacheOptions.exactFormat): f16 (default) or q8_0. */
  format?: "f16" | "q8_0";
}

/** A row in the cache's rotated space (rotation n, 0: none) rounded to `format` (f16 or q8_0), as the window keeps it. */
function exactRow(row: Float32Array, rotation: number, format: string): Float32Array {
  const r = Float32Array.from(row);
  if (rotation > 0) rotateRowReference(r, rotation);
  const f = getFormat(format);
  const packed = new Uint8Array(rowBytes(f, r.length));
  f.reference.quantizeRow(r, packed);
  const back = new Float32Array(r.length);
  f.reference.dequantizeRow(packed, back);
  return back;
}

/**
 * Attention recomputed from what `cache` stored for `layer`: each query head is converted to the K format's dot partner
 * over the blocks covering its slice (zeros elsewhere), scored with the reference dot; V rows are dequantized with the
 * reference kernels; softmax and weighted sum in float64. Rotation (when the layer has it) is applied to q as the
 * cache does (f32 reference transform) and undone on the output in float64. With `exact`, the query's last
 * `exact.window` positions are scored and summed from their appended rows instead, rotated and rounded to f16 (or q8_0,
 * exact.format), the query through the same format (an f16 or q8_0 cache's dot, here in float64 over the rounded
 * values); so are its first `exact.sinks` positions. Keys stored per channel are
 * scored as the kernel scores them (channelKeyScore).
 */
export function attentionFromStored(cache: KvCache, layer: number, nPos: number, qIn: Float32Array, exact?: ExactWindow): Float64Array {
  return storedAttention(cache, layer, nPos, qIn, exact).out;
}

/**
 * How far a kernel's output for `cache` lies from attentionFromStored beyond what the grouped kernel's integer sums of
 * kvsplit's codebook values may add (integerValueBound, per output value; none for other formats, the per-head kernel
 * or exact rows): max over values of max(0, |out − ref| − bound) / max |ref|. `integerValues: false` holds a kernel
 * that sums every value in floats (the per-head one) to no bound.
 */
export function storedAttentionError(
  out: ArrayLike<number>, cache: KvCache, layer: number, nPos: number, q: Float32Array, exact?: ExactWindow, integerValues = true,
): number {
  return errorBeyondBound(out, storedAttention(cache, layer, nPos, q, exact), integerValues);
}

/** storedAttentionError against a storedAttention result already computed. */
export function errorBeyondBound(out: ArrayLike<number>, ref: StoredAttention, integerValues = true): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < ref.out.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(out[i] - ref.out[i]) - (integerValues ? ref.bound[i] : 0));
    maxRef = Math.max(maxRef, Math.abs(ref.out[i]));
  }
  return maxDiff / (maxRef || 1);
}

/**
 * The most the grouped kernel's integer sums of codebook values (attention-gqa.ts roundTileWeights) move one head's
 * output, value by value, for its packed positions `packed` (their block scales `scales`, valueBlockScales) with
 * softmax weights w (unnormalized; their sum `sum`):
 * each term x = w·d rounded to a step of at most wTop·dTop / 32767 (the largest weight and the block's largest |d|
 * over all packed positions, at least a tile's), off by half a step (0.51: with the f32 roundings of the scaled weight)
 * times the level |L| = |v / d|, over the sum; in the rotated space, so a rotated layer's bound is spread back through
 * the normalized Hadamard transform (each output value: Σ of its chunk's bounds / √n).
 */
function integerValueBound(
  cache: KvCache, layer: number, kvHead: number, packed: number[], scales: number[][], w: number[], sum: number, vRows: Float32Array[],
): Float64Array {
  const l = cache.layout(layer);
  const { headDim } = cache;
  const bound = new Float64Array(headDim);
  if (!usesIntegerValues(cache, layer) || packed.length === 0) return bound;
  const start = kvHead * headDim;
  const nBlocks = headDim / l.v.blockSize;
  const wTop = Math.max(...packed.map((p) => w[p]));
  for (let b = 0; b < nBlocks; b++) {
    const dTop = Math.max(...scales.map((s) => Math.abs(s[b])));
    const halfStep = (0.51 * wTop * dTop) / 32767;
    for (let i = b * l.v.blockSize; i < (b + 1) * l.v.blockSize; i++) {
      let levels = 0;
      packed.forEach((p, j) => {
        const d = scales[j][b];
        if (d !== 0) levels += Math.abs(vRows[p][start + i] / d);
      });
      bound[i] = (halfStep * levels) / sum;
    }
  }
  const n = l.rotation.v;
  if (n > 0) {
    for (let c = 0; c < headDim; c += n) {
      let chunk = 0;
      for (let i = c; i < c + n; i++) chunk += bound[i];
      bound.fill(chunk / Math.sqrt(n), c, c + n);
    }
  }
  return bound;
}

/** Whether the grouped kernel sums this layer's values in integers: kvsplit's own formats (the codebooks) there. */
function usesIntegerValues(cache: KvCache, layer: number): boolean {
  const l = cache.layout(layer);
  return l.grouped && isOwnFormat(l.v);
}

/** Block b's scale of kv head kvHead's slice of each V row of `packed`: ([packed], headDim / 32). */
function valueBlockScales(cache: KvCache, layer: number, kvHead: number, packed: number[]): number[][] {
  const l = cache.layout(layer);
  const bs = l.v.blockSize;
  return packed.map((p) => {
    const row = cache.packedRow(layer, "v", p);
    return Array.from({ length: cache.headDim / bs }, (_, b) => {
      const at = ((kvHead * cache.headDim) / bs + b) * l.v.bytesPerBlock;
      return blockScaleAndMin(l.v, row.subarray(at, at + l.v.bytesPerBlock))[0];
    });
  });
}

/** attentionFromStored's output and, per output value, integerValueBound's bound (zeros where it does not apply). */
export interface StoredAttention {
  out: Float64Array; // (nHeads·headDim)
  bound: Float64Array; // (nHeads·headDim)
}

/** attentionFromStored with the integer sums' bound beside it (StoredAttention). */
export function storedAttention(cache: KvCache, layer: number, nPos: number, qIn: Float32Array, exact?: ExactWindow): StoredAttention {
  const l = cache.layout(layer);
  const { nHeads, nKvHeads, headDim } = cache;
  const group = nHeads / nKvHeads;
  const q = Float32Array.from(qIn);
  if (l.rotation.k > 0) rotateRowReference(q, l.rotation.k);
  const scale = Math.fround(1 / Math.sqrt(headDim));
  const out = new Float64Array(nHeads * headDim);
  const bound = new Float64Array(nHeads * headDim);
  const lo = exact ? Math.max(0, nPos - exact.window) : nPos;
  const isExact = (p: number) => p >= lo || p < (exact?.sinks ?? 0);
  const vRowsF32 = [];
  for (let p = 0; p < nPos; p++) {
    if (isExact(p)) {
      vRowsF32.push(exactRow(exact!.v[p], l.rotation.v, exact!.format ?? "f16"));
      continue;
    }
    const vals = new Float32Array(l.vRowValues);
    l.v.reference.dequantizeRow(cache.packedRow(layer, "v", p), vals);
    vRowsF32.push(vals);
  }
  const channelGroups = new Map<string, ChannelGroup>(); // keys per channel: "kvHead group" -> its blocks read
  const packed = Array.from({ length: nPos }, (_, p) => p).filter((p) => !isExact(p)); // positions of packed rows
  const scalesOf = new Map<number, number[][]>(); // codebook values: kv head -> valueBlockScales, read once
  const kExact = exact ? exact.k.slice(0, nPos).map((row, p) => (isExact(p) ? exactRow(row, l.rotation.k, exact.format ?? "f16") : null)) : [];
  for (let h = 0; h < nHeads; h++) {
    const start = Math.floor(h / group) * headDim;
    const bs = l.k.blockSize;
    const b0 = Math.floor(start / bs);
    const b1 = Math.ceil((start + headDim) / bs);
    const cover = new Float32Array((b1 - b0) * bs);
    cover.set(q.subarray(h * headDim, (h + 1) * headDim), start - b0 * bs);
    const partner = getFormat(l.kPartner.name);
    const qPartner = new Uint8Array(rowBytes(partner, cover.length));
    partner.reference.quantizeRow(cover, qPartner);
    const coverBytes = rowBytes(l.k, cover.length);
    const scores: number[] = [];
    // the window's query: this head through f16 or q8_0, as that cache's dot partner
    const qHalf = exactRow(q.subarray(h * headDim, (h + 1) * headDim), 0, exact?.format ?? "f16");
    for (let p = 0; p < nPos; p++) {
      const kRow = kExact[p];
      if (kRow) {
        let s = 0;
        for (let i = 0; i < headDim; i++) s += qHalf[i] * kRow[start + i];
        scores.push(s * scale);
        continue;
      }
      if (l.kChannel) {
        const key = `${Math.floor(h / group)} ${Math.floor(p / KEY_GROUP)}`;
        if (!channelGroups.has(key)) channelGroups.set(key, channelGroup(cache, layer, Math.floor(h / group), Math.floor(p / KEY_GROUP)));
        scores.push(channelKeyScore(channelGroups.get(key)!, p % KEY_GROUP, q.subarray(h * headDim, (h + 1) * headDim)) * scale);
        continue;
      }
      const rowStart = b0 * l.k.bytesPerBlock;
      scores.push(l.k.reference.dot(cache.packedRow(layer, "k", p).subarray(rowStart, rowStart + coverBytes), qPartner, cover.length) * scale);
    }
    const max = Math.max(...scores);
    const w = scores.map((s) => Math.exp(s - max));
    const sum = w.reduce((a, b) => a + b, 0);
    for (let p = 0; p < nPos; p++) {
      for (let i = 0; i < headDim; i++) out[h * headDim + i] += (w[p] / sum) * vRowsF32[p][start + i];
    }
    const kvHead = Math.floor(h / group);
    if (usesIntegerValues(cache, layer) && !scalesOf.has(kvHead)) scalesOf.set(kvHead, valueBlockScales(cache, layer, kvHead, packed));
    bound.set(integerValueBound(cache, layer, kvHead, packed, scalesOf.get(kvHead) ?? [], w, sum, vRowsF32), h * headDim);
  }
  if (l.rotation.v > 0) hadamardF64(out, l.rotation.v);
  return { out, bound };
}

/** One group of one kv head's keys stored per channel: per channel c its scale d[c], min m[c] and KEY_GROUP integer quants. */
interface ChannelGroup {
  d: Float64Array; // (headDim)
  m: Float64Array; // (headDim)
  quants: Float64Array[]; // (headDim) × (KEY_GROUP)
}

const CODEBOOKS = { iq3_nl: IQ3_NL, iq2_nl: IQ2_NL, iq3_e8: IQ3_E8, iq2_e8: IQ2_E8 } as const;

/** A block's scale d and min m (0 where the format has none), read where the format stores them. */
export function blockScaleAndMin(format: BlockFormat, block: Uint8Array): [number, number] {
  const cb = CODEBOOKS[format.name as keyof typeof CODEBOOKS];
  if (cb) return [codebookScale(cb, block, 0), 0];
  return [readF16(block, 0), format.name === "q4_1" || format.name === "q5_1" ? readF16(block, 2) : 0];
}

/**
 * Group `group` of kv head `kvHead` as the reference kernels read it: each channel block dequantized, its integer
 * quants recovered as (value − m) / d rounded (0 where d is 0, where they do not count).
 */
function channelGroup(cache: KvCache, layer: number, kvHead: number, group: number): ChannelGroup {
  const l = cache.layout(layer);
  const { headDim } = cache;
  const out: ChannelGroup = { d: new Float64Array(headDim), m: new Float64Array(headDim), quants: [] };
  const values = new Float32Array(KEY_GROUP);
  for (let c = 0; c < headDim; c++) {
    const block = cache.keyChannelBlock(layer, kvHead, group, c);
    const [d, m] = blockScaleAndMin(l.k, block);
    l.k.reference.dequantizeRow(block, values);
    out.d[c] = d;
    out.m[c] = m;
    out.quants.push(Float64Array.from(values, (v) => (d === 0 ? 0 : Math.round((v - m) / d))));
  }
  return out;
}

/**
 * q·key(i) for position i of a group of keys stored per channel, computed as attention-gqa.ts scoreChannelsAll does:
 * the query and the channel scales each rounded to i16 at their maximum (qs = round(q · f32(32767 / max |q|)), sq =
 * max |q| / 32767, the same for d), multiplied in Q15 (qi = (qs·dn + 2^14) >> 15), then f32(Σ qi[c]·k[i][c]) ·
 * f32(sq · sd) · 32768 + sq · Σ qs[c]·m[c], the kernel's f32 operations, the sums in float64.
 */
function channelKeyScore(g: ChannelGroup, i: number, q: Float32Array): number {
  const f = Math.fround;
  const toI16 = (xs: ArrayLike<number>) => {
    const top = Math.max(...Array.from(xs, Math.abs));
    const inv = top > 0 ? f(32767 / top) : 0;
    // + 1.5·2^23 in f32 rounds half to even
    return { step: f(top / 32767), ints: Array.from(xs, (x) => f(f(x * inv) + 12582912) - 12582912) };
  };
  const qs = toI16(q);
  const dn = toI16(g.d);
  let sum = 0;
  let minTerm = 0;
  for (let c = 0; c < q.length; c++) {
    const qi = Math.floor((qs.ints[c] * dn.ints[c] + 16384) / 32768);
    sum += qi * g.quants[c][i];
    minTerm += qs.ints[c] * g.m[c];
  }
  return f(sum) * f(f(qs.step * dn.step) * 32768) + qs.step * minTerm;
}

/** max |a − b| / max |b|: error relative to the largest reference magnitude. */
export function maxRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let maxDiff = 0;
  let maxRef = 0;
  for (let i = 0; i < b.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]));
    maxRef = Math.max(maxRef, Math.abs(b[i]));
  }
  return maxDiff / (maxRef || 1);
}

/** ‖a − b‖ / ‖b‖ (root-mean-square error relative to the reference's RMS). */
export function rmsRelativeError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / (den || 1));
}
