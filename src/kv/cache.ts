/**
 * The KV cache: per layer, keys and values each stored in their own block format, attention computed straight from
 * the packed blocks (assembly/attention.ts), optional Hadamard rotation exactly where llama.cpp applies it (rotation.ts).
 *
 * Layout of one layer:
 *   K storage: (contextSize, kRowBytes) bytes: position p's K row (kvDim values, zero-padded to whole K blocks) at p·kRowBytes
 *   V storage: (contextSize, vRowBytes) bytes: likewise in the V format
 * A head's slice of a row is whole blocks when headDim is a multiple of the block size; otherwise blocks span heads and
 * attention works on the run of blocks covering the slice (see assembly/attention.ts for the method).
 * Storage and scratch are allocated once in the constructor; append and attend allocate nothing.
 */
import type { BlockFormat } from "../formats/types.js";
import { getFormat, rowBytes } from "../formats/table.js";
import type { WasmRuntime } from "../runtime/wasm.js";
import { rotationSizes, type RotationSizes } from "./rotation.js";

export interface KvLayerFormats {
  k: BlockFormat;
  v: BlockFormat;
}

export interface KvCacheOptions {
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  headDim: number;
  contextSize: number;
  /** One pair per layer. */
  layers: KvLayerFormats[];
  /** Rotate quantized K/V as llama.cpp does (only where its conditions hold: quantized side, headDim % 64 == 0). */
  rotation: boolean;
  /** "llama.cpp" (default): rotate only quantized sides; "all": every side, f32/f16/bf16 too (tests, experiments). */
  rotationRule?: "llama.cpp" | "all";
}

/** Values of a kvDim row once padded to whole blocks of `format`. */
export function paddedRowValues(format: BlockFormat, kvDim: number): number {
  return Math.ceil(kvDim / format.blockSize) * format.blockSize;
}

/** Bytes one position's row of kvDim values takes in `format` (padding to whole blocks included). */
export function kvRowBytes(format: BlockFormat, kvDim: number): number {
  return rowBytes(format, paddedRowValues(format, kvDim));
}

/** Bytes one position takes over all layers, K and V. */
export function kvBytesPerToken(layers: readonly KvLayerFormats[], kvDim: number): number {
  let total = 0;
  for (const l of layers) total += kvRowBytes(l.k, kvDim) + kvRowBytes(l.v, kvDim);
  return total;
}

/** What a layer stores and where: read by tests and reports. */
export interface KvLayerLayout {
  readonly k: BlockFormat;
  readonly v: BlockFormat;
  /** The format the query is converted to before K's dot (llama.cpp's vec_dot_type of K). */
  readonly kPartner: BlockFormat;
  readonly kRowValues: number;
  readonly vRowValues: number;
  readonly kRowBytes: number;
  readonly vRowBytes: number;
  /** (contextSize, kRowBytes) bytes */
  readonly kPtr: number;
  /** (contextSize, vRowBytes) bytes */
  readonly vPtr: number;
  readonly rotation: RotationSizes;
}

export class KvCache {
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly headDim: number;
  readonly kvDim: number;
  readonly contextSize: number;
  private readonly rt: WasmRuntime;
  private readonly layouts: KvLayerLayout[];
  private readonly scale: number;
  private stored = 0;
  private disposed = false;
  // scratch, allocated once
  private readonly qRotPtr: number; //    (nHeads, headDim) f32: the rotated query
  private readonly qCoverPtr: number; //  (maxCoverK) f32: one query head placed in its covering K blocks
  private readonly qPartnerPtr: number; // (maxCoverK) values in the K dot partner format
  private readonly scoresPtr: number; //  (contextSize) f32
  private readonly accPtr: number; //     (maxCoverV) f32
  private readonly rowPtr: number; //     (maxRowValues) f32: a row being rotated or padded before quantization

  constructor(rt: WasmRuntime, opts: KvCacheOptions) {
    checkOptions(opts);
    for (const name of ["attend_packed", "storeRow_packed", "fwht_f32"]) {
      if (typeof rt.k[name] !== "function") throw new Error(`the WebAssembly kernels lack '${name}': rebuild with npm run build:wasm`);
    }
    this.rt = rt;
    this.nLayers = opts.nLayers;
    this.nHeads = opts.nHeads;
    this.nKvHeads = opts.nKvHeads;
    this.headDim = opts.headDim;
    this.kvDim = opts.nKvHeads * opts.headDim;
    this.contextSize = opts.contextSize;
    this.scale = Math.fround(1 / Math.sqrt(opts.headDim));

    let maxCoverK = 0;
    let maxPartnerBytes = 0;
    let maxCoverV = 0;
    let maxRowValues = 0;
    const allocated: number[] = [];
    const alloc = (bytes: number): number => {
      const p = rt.alloc(bytes);
      allocated.push(p);
      return p;
    };
    try {
      this.layouts = opts.layers.map((pair) => {
        const kPartner = getFormat(pair.k.dotPartner);
        const kRowValues = paddedRowValues(pair.k, this.kvDim);
        const vRowValues = paddedRowValues(pair.v, this.kvDim);
        const kRowBytes = rowBytes(pair.k, kRowValues);
        const vRowBytes = rowBytes(pair.v, vRowValues);
        const coverK = coverValues(pair.k, this.headDim);
        maxCoverK = Math.max(maxCoverK, coverK);
        maxPartnerBytes = Math.max(maxPartnerBytes, rowBytes(kPartner, coverK));
        maxCoverV = Math.max(maxCoverV, coverValues(pair.v, this.headDim));
        maxRowValues = Math.max(maxRowValues, kRowValues, vRowValues);
        return {
          k: pair.k,
          v: pair.v,
          kPartner,
          kRowValues,
          vRowValues,
          kRowBytes,
          vRowBytes,
          kPtr: alloc(this.contextSize * kRowBytes),
          vPtr: alloc(this.contextSize * vRowBytes),
          rotation: rotationSizes(opts.rotation, this.headDim, pair.k, pair.v, opts.rotationRule === "all"),
        };
      });
      this.qRotPtr = alloc(this.nHeads * this.headDim * 4);
      this.qCoverPtr = alloc(maxCoverK * 4);
      this.qPartnerPtr = alloc(maxPartnerBytes);
      this.scoresPtr = alloc(this.contextSize * 4);
      this.accPtr = alloc(maxCoverV * 4);
      this.rowPtr = alloc(maxRowValues * 4);
    } catch (e) {
      for (const p of allocated) rt.free(p);
      throw e;
    }
    // a fresh cache reads as zeros, not as whatever the memory held before
    for (const l of this.layouts) {
      rt.u8(l.kPtr, this.contextSize * l.kRowBytes).fill(0);
      rt.u8(l.vPtr, this.contextSize * l.vRowBytes).fill(0);
    }
  }

  /** Positions stored (in every layer). */
  get length(): number {
    return this.stored;
  }

  layout(layer: number): KvLayerLayout {
    this.checkLayer(layer);
    return this.layouts[layer];
  }

  /**
   * Store position `pos` of `layer`: k and v are f32 rows of kvDim values at byte offsets kPtr, vPtr (k after RoPE).
   * Quantized sides are rotated first when the layer rotates them. Storing the last layer of a position past the
   * current length extends the length to pos + 1.
   */
  append(layer: number, pos: number, kPtr: number, vPtr: number): void {
    this.checkLayer(layer);
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.contextSize) {
      throw new RangeError(`position ${pos} is outside the cache (0 .. ${this.contextSize - 1})`);
    }
    const l = this.layouts[layer];
    const k = this.rt.k;
    const okK = k.storeRow_packed(l.k.ggmlType, kPtr, this.kvDim, l.kRowValues, l.rotation.k, this.rowPtr, l.kPtr + pos * l.kRowBytes);
    const okV = k.storeRow_packed(l.v.ggmlType, vPtr, this.kvDim, l.vRowValues, l.rotation.v, this.rowPtr, l.vPtr + pos * l.vRowBytes);
    if (!okK || !okV) throw new Error(`layer ${layer}: the attention kernels do not know K format '${l.k.name}' or V format '${l.v.name}'`);
    if (layer === this.nLayers - 1 && pos + 1 > this.stored) this.stored = pos + 1;
  }

  /**
   * out = softmax(q·Kᵀ/√headDim) V over positions [0, nPos) for every query head (head h reads kv head
   * h / (nHeads/nKvHeads)); q and out are (nHeads, headDim) f32 at qPtr, outPtr. q is not modified.
   */
  attend(layer: number, nPos: number, qPtr: number, outPtr: number): void {
    this.checkLayer(layer);
    if (!Number.isInteger(nPos) || nPos < 0 || nPos > this.contextSize) {
      throw new RangeError(`attention over ${nPos} positions: the cache holds 0 .. ${this.contextSize}`);
    }
    const l = this.layouts[layer];
    const k = this.rt.k;
    const qDim = this.nHeads * this.headDim;
    let q = qPtr;
    if (l.rotation.k > 0) {
      k.fwht_f32(qPtr, this.qRotPtr, l.rotation.k, qDim / l.rotation.k);
      q = this.qRotPtr;
    }
    k.attend_packed(
      q, outPtr, nPos, 0, this.nHeads, this.nHeads, this.nKvHeads, this.headDim, this.scale,
      l.kPtr, l.kRowBytes, l.k.ggmlType, l.kPartner.ggmlType, l.k.blockSize, l.k.bytesPerBlock,
      l.vPtr, l.vRowBytes, l.v.ggmlType, l.v.blockSize, l.v.bytesPerBlock,
      this.qCoverPtr, this.qPartnerPtr, this.scoresPtr, this.accPtr,
    );
    // the output is a combination of rotated V rows: rotating again undoes it (H·H = I)
    if (l.rotation.v > 0) k.fwht_f32(outPtr, outPtr, l.rotation.v, qDim / l.rotation.v);
  }

  /** Set the number of positions stored: after a batch has appended positions, or to truncate for reuse. */
  setLength(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.contextSize) {
      throw new RangeError(`cache length ${n} is outside 0 .. ${this.contextSize}`);
    }
    this.stored = n;
  }

  /** Exact bytes of K and V storage: Σ layers contextSize × (kRowBytes + vRowBytes). */
  bytes(): number {
    let total = 0;
    for (const l of this.layouts) total += this.contextSize * (l.kRowBytes + l.vRowBytes);
    return total;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const l of this.layouts) {
      this.rt.free(l.kPtr);
      this.rt.free(l.vPtr);
    }
    for (const p of [this.qRotPtr, this.qCoverPtr, this.qPartnerPtr, this.scoresPtr, this.accPtr, this.rowPtr]) this.rt.free(p);
  }

  private checkLayer(layer: number): void {
    if (this.disposed) throw new Error("the KV cache was disposed");
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.nLayers) {
      throw new RangeError(`layer ${layer} is outside 0 .. ${this.nLayers - 1}`);
    }
  }
}

/** Values of the longest run of whole blocks covering one head's slice (a slice may straddle one more block). */
function coverValues(format: BlockFormat, headDim: number): number {
  const bs = format.blockSize;
  return headDim % bs === 0 ? headDim : (Math.ceil(headDim / bs) + 1) * bs;
}

function checkOptions(o: KvCacheOptions): void {
  const positive = (name: string, v: number) => {
    if (!Number.isInteger(v) || v <= 0) throw new RangeError(`KV cache ${name} must be a positive integer, got ${v}`);
  };
  positive("nLayers", o.nLayers);
  positive("nHeads", o.nHeads);
  positive("nKvHeads", o.nKvHeads);
  positive("headDim", o.headDim);
  positive("contextSize", o.contextSize);
  if (o.nHeads % o.nKvHeads !== 0) {
    throw new RangeError(`KV cache nHeads ${o.nHeads} is not a multiple of nKvHeads ${o.nKvHeads}`);
  }
  if (o.layers.length !== o.nLayers) {
    throw new RangeError(`KV cache needs one K/V format pair per layer: ${o.nLayers} layers, got ${o.layers.length} pairs`);
  }
  o.layers.forEach((pair, i) => {
    for (const [side, f] of [["K", pair.k], ["V", pair.v]] as const) {
      if (!f.kv) throw new RangeError(`layer ${i}: format '${f.name}' cannot hold the ${side} cache`);
    }
  });
}
