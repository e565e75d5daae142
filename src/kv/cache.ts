/**
 * The KV cache: per layer, keys and values each stored in their own block format, attention computed straight from
 * the packed blocks (assembly/attention.ts), optional Hadamard rotation exactly where llama.cpp applies it (rotation.ts).
 *
 * Layout of one layer, K and V alike (X = K or V, each in its own format):
 *   head-major, when every head is whole X blocks (headDim a multiple of both block sizes: every real model):
 *     X storage: (nKvHeads, contextSize, xRowBytes / nKvHeads) bytes: one plane per kv head, position p of head g at
 *     g·xHeadStride + p·xPosStride. Attention on one kv head then streams one contiguous run of memory (a strided
 *     walk over whole rows was 1.6–1.9× slower once the cache no longer fits in L2).
 *   position-major, otherwise (e.g. headDim 8 with 32-value blocks):
 *     X storage: (contextSize, xRowBytes) bytes: position p's row (kvDim values, zero-padded to whole blocks) at
 *     p·xRowBytes; blocks span heads and attention works on the run of blocks covering a head's slice
 *     (see assembly/attention.ts for the method).
 * Either way a position's row quantizes to the same block bytes (packedRow() gathers them) and takes xRowBytes.
 * Storage and scratch are allocated once in the constructor; append and attend allocate nothing.
 *
 * Attention runs per (token, kv head) item: heads on whole K and V blocks (every real model) take the grouped kernel
 * (assembly/attention-gqa.ts: the query heads of one kv head share each decoded K block and V row), others the per-head
 * kernel (attention.ts). Both give the same bits. With a thread pool the items are split across its threads, each
 * with its own scratch; an item's result never depends on which thread computed it.
 */
import { EXACT_FORMAT_NAMES, isExactFormatName, type BlockFormat, type ExactFormatName } from "../formats/types.js";
import { getFormat, rowBytes } from "../formats/table.js";
import type { ParallelTask } from "../runtime/pool.js";
import type { WasmRuntime } from "../runtime/wasm.js";
import { rotationSizes, type RotationSizes } from "./rotation.js";

/**
 * Tokens of a batch that one item of the grouped attention kernel covers at most: its attendTokenTile(), which sizes
 * its per-thread scratch (memory plans count on it; the cache refuses kernels that say otherwise).
 */
export const ATTEND_TOKEN_TILE = 8;

export interface KvLayerFormats {
  k: BlockFormat;
  v: BlockFormat;
  /** This layer's exact recent window, overriding KvCacheOptions.window (a per-layer schedule's). */
  window?: number;
  /** This layer's exact sinks, overriding KvCacheOptions.sinks. */
  sinks?: number;
  /**
   * "channel": keys per channel (KIVI): each group of KEY_GROUP positions of a kv head is quantized channel by channel
   * (block c = channel c's KEY_GROUP values), once complete; until then its positions are read from the exact window,
   * which must hold at least KEY_GROUP positions. K must be a 32-value block format. Default: one K row per position.
   */
  kLayout?: "channel";
}

/** Each layer's exact window and sinks: its own where it has them, else the cache-wide ones, at most `contextSize`. */
export function layerExactRows(
  layers: readonly Pick<KvLayerFormats, "window" | "sinks">[], defaults: { window?: number; sinks?: number }, contextSize: number,
): { window: number; sinks: number }[] {
  return layers.map((l) => ({
    window: Math.min(l.window ?? defaults.window ?? 0, contextSize),
    sinks: Math.min(l.sinks ?? defaults.sinks ?? 0, contextSize),
  }));
}

/** Bytes the exact rows of these layers add to a cache of `contextSize` positions (K and V rows of windows and sinks). */
export function kvExactBytesOf(
  layers: readonly Pick<KvLayerFormats, "window" | "sinks">[], defaults: { window?: number; sinks?: number; exactFormat?: ExactFormatName },
  contextSize: number, kvDim: number,
): number {
  return layerExactRows(layers, defaults, contextSize).reduce((sum, e) => sum + kvExactBytes(e.window + e.sinks, 1, kvDim, defaults.exactFormat), 0);
}

/** What the cache needs of a thread pool (src/runtime/pool.ts ThreadPool fits), over the runtime's memory. */
export interface KvThreadPool {
  readonly nThreads: number;
  run(tasks: ParallelTask[]): void;
}

/** Layer descriptor fields read by the attention kernels (assembly/attention-common.ts D_*), in i32 slots. */
const LAYER_DESC = {
  nHeads: 0, nKvHeads: 1, headDim: 2, scale: 3, kRows: 4, kPosStride: 5, kType: 6, kPartner: 7, kBlock: 8, kBlockBytes: 9,
  vRows: 10, vPosStride: 11, vType: 12, vBlock: 13, vBlockBytes: 14, rotK: 15, rotV: 16, maxPos: 17, headMajor: 18,
  kHeadStride: 19, vHeadStride: 20, kGroupBytes: 21,
} as const;
const LAYER_DESC_SLOTS = 22;

/** Positions in one group of keys stored per channel (assembly/key-channels.ts): one 32-value block per channel. */
export const KEY_GROUP = 32;

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
  /** Split attention and batch appends across these threads (the model's pool; its tasks name `rt`'s shard). */
  pool?: KvThreadPool;
  /**
   * Exact recent window: each query reads its last `window` positions from f16 rows instead of the packed ones (the
   * packed rows are still written: a position leaves the window). Default 0 (none). Needs whole blocks per head.
   */
  window?: number;
  /** Largest batch appended at once (sizes the window's staging rows; default contextSize). */
  maxTokens?: number;
  /** Exact sinks: positions [0, sinks) are read from f16 rows by every query (default 0). Needs whole blocks per head. */
  sinks?: number;
  /**
   * The format of the windows' and sinks' rows: "f16" (default, exact) or "q8_0" (8.5 bits per value instead of 16:
   * the same memory holds almost twice the window; needs head_dim a multiple of 32, and f16 rows for keys per channel).
   */
  exactFormat?: ExactFormatName;
}

/** Bytes exact rows add to a cache: `rows` K and V rows per layer (a window's, sinks') in `format` (default f16). */
export function kvExactBytes(rows: number, nLayers: number, kvDim: number, format: ExactFormatName = "f16"): number {
  return nLayers * 2 * rows * kvRowBytes(getFormat(format), kvDim);
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

/**
 * Bits per cached value, counted honestly: every byte the cache holds for a context of contextSize positions (scales,
 * padding and any exact rows included) × 8 / (contextSize × layers × kvDim × 2 (K and V)).
 */
export function kvBitsPerValue(kvBytes: number, contextSize: number, nLayers: number, kvDim: number): number {
  return (8 * kvBytes) / (contextSize * nLayers * kvDim * 2);
}

/** What a layer stores and where: read by tests and reports. */
export interface KvLayerLayout {
  readonly k: BlockFormat;
  readonly v: BlockFormat;
  /** The format the query is converted to before K's dot (llama.cpp's vec_dot_type of K). */
  readonly kPartner: BlockFormat;
  readonly kRowValues: number;
  readonly vRowValues: number;
  /** Bytes of one position's K (V) row over every kv head, padding included: the format arithmetic. */
  readonly kRowBytes: number;
  readonly vRowBytes: number;
  /** K (V) storage: contextSize × kRowBytes (vRowBytes) bytes, laid out as `headMajor` says. */
  readonly kPtr: number;
  readonly vPtr: number;
  /** One plane per kv head (true) or one row per position (false); see the file comment. */
  readonly headMajor: boolean;
  /** Bytes from position p to p + 1 of one kv head: kRowBytes / nKvHeads when head-major, else kRowBytes. */
  readonly kPosStride: number;
  readonly vPosStride: number;
  /** Bytes from kv head g's plane to g + 1's when head-major (contextSize × kPosStride), else 0. */
  readonly kHeadStride: number;
  readonly vHeadStride: number;
  readonly rotation: RotationSizes;
  /** Head-major and headDim % 8 == 0: the grouped kernel runs; else the per-head one. */
  readonly grouped: boolean;
  /** Keys per channel (KvLayerFormats.kLayout): kPosStride is then 0 and a kv head's plane holds groups of KEY_GROUP positions. */
  readonly kChannel: boolean;
  /** Bytes of one group of keys per channel (headDim blocks of K), 0 for per-position rows. */
  readonly kGroupBytes: number;
  /** Bytes of the layer's K storage (every kv head; a channel layout rounds the context up to whole groups). */
  readonly kBytes: number;
  /** The layer descriptor the kernels read (LAYER_DESC fields). */
  readonly descPtr: number;
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
  private readonly pool: KvThreadPool | undefined;
  private readonly nThreads: number;
  // scratch, allocated once
  private readonly descsPtr: number; //   (nLayers, LAYER_DESC) i32: one descriptor per layer
  private readonly scratchPtr: number; // (nThreads, scratchStride) bytes: each thread's attention / row scratch
  private readonly scratchStride: number;
  private readonly rowScratchBytes: number; // (maxRowValues) f32: a row being rotated or padded before quantization
  // exact recent window (windows[layer] > 0), see KvCacheOptions.window and KvLayerFormats.window
  readonly windows: readonly number[];
  readonly exactFormat: BlockFormat; // the windows' and sinks' rows: f16 or q8_0 (KvCacheOptions.exactFormat)
  private readonly headRowBytes: number; // one kv head's exact row: headDim values in exactFormat
  private readonly ringK: number[] = []; // per layer (nKvHeads, window, headRowBytes) exact rows: position p in slot p % window; 0: no window
  private readonly ringV: number[] = [];
  private readonly ringEnd: number[] = []; // per layer: the ring holds positions [ringEnd − window, ringEnd)
  private readonly stageRows: number; // largest window + maxTokens
  private readonly stageK: number = 0; // (nKvHeads, stageRows, headRowBytes) exact rows: one layer's for one batch
  private readonly stageV: number = 0;
  private readonly xdescPtr: number = 0; // the staging rows' descriptor (LAYER_DESC fields), rewritten per append
  private staged = { layer: -1, first: 0, end: 0 }; // stage rows hold positions [first, end) of this layer
  // exact sinks (sinkCounts[layer] > 0), see KvCacheOptions.sinks and KvLayerFormats.sinks
  readonly sinkCounts: readonly number[];
  private readonly sinkK: number[] = []; // per layer (nKvHeads, sinks, headRowBytes) exact rows: position p in row p; 0: no sinks
  private readonly sinkV: number[] = [];
  private readonly sinkDescs: number[] = []; // per layer: the sink rows' descriptor (LAYER_DESC fields); 0: no sinks

  constructor(rt: WasmRuntime, opts: KvCacheOptions) {
    checkOptions(opts);
    for (const name of ["attendGrouped_packed", "attendHeads_packed", "attendScratchBytes", "attendTokenTile", "storeRow_packed", "storeRows_packed", "storeKeyGroups_channel"]) {
      if (typeof rt.k[name] !== "function") throw new Error(`the WebAssembly kernels lack '${name}': rebuild with npm run build:wasm`);
    }
    this.rt = rt;
    const tokenTile = Number(rt.k.attendTokenTile());
    if (tokenTile !== ATTEND_TOKEN_TILE) throw new Error(`the WebAssembly kernels' token tile is ${tokenTile}, not ${ATTEND_TOKEN_TILE}: rebuild with npm run build:wasm`);
    this.nLayers = opts.nLayers;
    this.nHeads = opts.nHeads;
    this.nKvHeads = opts.nKvHeads;
    this.headDim = opts.headDim;
    this.kvDim = opts.nKvHeads * opts.headDim;
    this.contextSize = opts.contextSize;
    this.scale = Math.fround(1 / Math.sqrt(opts.headDim));
    this.pool = opts.pool;
    this.nThreads = opts.pool?.nThreads ?? 1;
    const exact = layerExactRows(opts.layers, opts, this.contextSize);
    this.windows = exact.map((e) => e.window);
    this.sinkCounts = exact.map((e) => e.sinks);
    this.exactFormat = getFormat(opts.exactFormat ?? "f16");
    this.headRowBytes = this.headDim % this.exactFormat.blockSize === 0 ? rowBytes(this.exactFormat, this.headDim) : 0;
    this.stageRows = Math.max(...this.windows) + Math.min(opts.maxTokens ?? this.contextSize, this.contextSize);

    let maxRowValues = 0;
    const allocated: number[] = [];
    const alloc = (bytes: number, zeroed = false): number => {
      const p = zeroed ? rt.allocZeroed(bytes) : rt.alloc(bytes);
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
        maxRowValues = Math.max(maxRowValues, kRowValues, vRowValues);
        // heads on whole K and V blocks: one plane per kv head; the grouped kernel also needs headDim % 8 == 0. Keys
        // per channel are whole blocks per head whatever headDim is.
        const kChannel = pair.kLayout === "channel";
        const headMajor = (kChannel || this.headDim % pair.k.blockSize === 0) && this.headDim % pair.v.blockSize === 0;
        const grouped = headMajor && this.headDim % 8 === 0;
        const kGroupBytes = kChannel ? this.headDim * pair.k.bytesPerBlock : 0;
        const kPosStride = kChannel ? 0 : headMajor ? kRowBytes / this.nKvHeads : kRowBytes;
        const vPosStride = headMajor ? vRowBytes / this.nKvHeads : vRowBytes;
        const kHeadStride = kChannel ? Math.ceil(this.contextSize / KEY_GROUP) * kGroupBytes : headMajor ? this.contextSize * kPosStride : 0;
        const kBytes = kChannel ? this.nKvHeads * kHeadStride : this.contextSize * kRowBytes;
        return {
          k: pair.k,
          v: pair.v,
          kPartner,
          kRowValues,
          vRowValues,
          kRowBytes,
          vRowBytes,
          // a fresh cache reads as zeros, not as whatever the memory held before
          kPtr: alloc(kBytes, true),
          vPtr: alloc(this.contextSize * vRowBytes, true),
          headMajor,
          kPosStride,
          vPosStride,
          kHeadStride,
          vHeadStride: headMajor ? this.contextSize * vPosStride : 0,
          rotation: rotationSizes(opts.rotation, this.headDim, pair.k, pair.v, opts.rotationRule === "all"),
          grouped,
          kChannel,
          kGroupBytes,
          kBytes,
          descPtr: 0,
        };
      });
      const descBytes = Number(rt.k.attendLayerDescBytes());
      if (descBytes !== LAYER_DESC_SLOTS * 4) throw new Error(`the WebAssembly kernels read ${descBytes}-byte layer descriptors, this cache writes ${LAYER_DESC_SLOTS * 4}: rebuild with npm run build`);
      this.descsPtr = alloc(this.nLayers * descBytes);
      this.layouts = this.layouts.map((l, i) => ({ ...l, descPtr: this.descsPtr + i * descBytes }));
      // per thread: attention scratch, or two rows (K and V of a batch append run in one pool run)
      this.rowScratchBytes = Math.ceil((maxRowValues * 4) / 64) * 64;
      const attention = Number(rt.k.attendScratchBytes(this.nHeads, this.nKvHeads, this.headDim, this.contextSize));
      this.scratchStride = Math.ceil(Math.max(attention, 2 * this.rowScratchBytes) / 64) * 64;
      this.scratchPtr = alloc(this.nThreads * this.scratchStride);
      this.layouts.forEach((l, i) => {
        if (!l.kChannel) return;
        const why =
          l.k.blockSize !== KEY_GROUP ? `K must be a ${KEY_GROUP}-value block format, not ${l.k.name}` :
          this.windows[i] < KEY_GROUP ? `they need an exact window of at least ${KEY_GROUP} positions (it holds each group until the group is complete), this layer has ${this.windows[i]}` :
          !l.grouped ? `V must be whole blocks per head (head_dim ${this.headDim}, V ${l.v.name})` : "";
        if (why) throw new RangeError(`layer ${i}: keys per channel: ${why}`);
      });
      const exactLayer = this.layouts.findIndex((_, i) => this.windows[i] > 0 || this.sinkCounts[i] > 0);
      if (exactLayer >= 0 && this.headRowBytes === 0) {
        throw new RangeError(`exact rows in ${this.exactFormat.name} need head_dim a multiple of ${this.exactFormat.blockSize}, not ${this.headDim}`);
      }
      const channelLayer = this.layouts.findIndex((l) => l.kChannel);
      if (channelLayer >= 0 && this.exactFormat.name !== "f16") {
        throw new RangeError(`layer ${channelLayer}: keys per channel are quantized from the window's exact rows, which must be f16, not ${this.exactFormat.name}`);
      }
      const bad = this.layouts.findIndex((l, i) => !l.grouped && (this.windows[i] > 0 || this.sinkCounts[i] > 0));
      if (bad >= 0) {
        const what = this.windows[bad] > 0 ? "an exact window" : "exact sinks";
        throw new RangeError(`${what} needs every kv head on whole K and V blocks (head_dim ${this.headDim}, layer ${bad}: ${this.layouts[bad].k.name}/${this.layouts[bad].v.name})`);
      }
      for (let i = 0; i < this.nLayers; i++) {
        const sinks = this.sinkCounts[i];
        this.sinkK.push(sinks > 0 ? alloc(this.nKvHeads * sinks * this.headRowBytes) : 0);
        this.sinkV.push(sinks > 0 ? alloc(this.nKvHeads * sinks * this.headRowBytes) : 0);
        this.sinkDescs.push(sinks > 0 ? alloc(descBytes) : 0);
        const ringBytes = this.nKvHeads * this.windows[i] * this.headRowBytes;
        this.ringK.push(ringBytes > 0 ? alloc(ringBytes) : 0);
        this.ringV.push(ringBytes > 0 ? alloc(ringBytes) : 0);
        this.ringEnd.push(0);
      }
      if (this.windows.some((w) => w > 0)) {
        this.stageK = alloc(this.nKvHeads * this.stageRows * this.headRowBytes);
        this.stageV = alloc(this.nKvHeads * this.stageRows * this.headRowBytes);
        this.xdescPtr = alloc(descBytes);
      }
    } catch (e) {
      for (const p of allocated) rt.free(p);
      throw e;
    }
    for (const l of this.layouts) this.writeDescriptor(l);
    this.sinkDescs.forEach((d, i) => {
      if (d) this.writeExactDescriptor(d, this.layouts[i], this.sinkK[i], this.sinkV[i], this.sinkCounts[i]);
    });
  }

  /** Positions stored (in every layer). */
  get length(): number {
    return this.stored;
  }

  /**
   * Context shift: drop positions [nKeep, nKeep + nDiscard) of every layer and move [nKeep + nDiscard, length) down by
   * nDiscard. V rows move as they are; each moved K row is decoded (and rotated back when the layer rotates K), handed
   * to `rerope` as f32 (rows, kvDim) to turn its rotary angles back by nDiscard positions, then stored again in the
   * layer's format. Layers with an exact window or keys per channel cannot shift (their exact rows and groups are tied to
   * positions: evaluate the kept tokens again instead); sinks must lie within the kept prefix.
   */
  shift(nKeep: number, nDiscard: number, rerope: (rowsPtr: number, nRows: number) => void): void {
    const n = this.stored;
    if (!Number.isInteger(nKeep) || !Number.isInteger(nDiscard) || nKeep < 0 || nDiscard < 1 || nKeep + nDiscard > n) {
      throw new RangeError(`shift: keep ${nKeep} and drop ${nDiscard} of ${n} positions`);
    }
    if (!this.canShift(nKeep)) throw new RangeError(`shift: ${this.shiftRefusal(nKeep)}`);
    const moved = n - nKeep - nDiscard;
    const chunk = 64;
    const rows = this.rt.alloc(chunk * this.kvDim * 4); // (chunk, kvDim) f32: the keys being moved
    try {
      for (let layer = 0; layer < this.nLayers; layer++) {
        const l = this.layouts[layer];
        for (let first = 0; first < moved; first += chunk) {
          const count = Math.min(chunk, moved - first);
          const from = nKeep + nDiscard + first;
          for (let r = 0; r < count; r++) this.decodeKeyRow(l, from + r, rows + r * this.kvDim * 4);
          rerope(rows, count);
          for (let r = 0; r < count; r++) {
            const ok = this.rt.k.storeRow_packed(l.k.ggmlType, rows + r * this.kvDim * 4, this.kvDim, l.kRowValues, l.rotation.k, this.scratchPtr, l.kPtr + (from + r - nDiscard) * l.kPosStride, this.segments(l), l.kHeadStride);
            if (!ok) throw new Error(`layer ${layer}: the kernels do not know K format '${l.k.name}'`);
          }
        }
        const u8 = this.rt.u8(0, this.rt.memory.buffer.byteLength);
        const heads = l.headMajor ? this.nKvHeads : 1;
        for (let g = 0; g < heads; g++) {
          const plane = l.vPtr + g * l.vHeadStride;
          u8.copyWithin(plane + nKeep * l.vPosStride, plane + (nKeep + nDiscard) * l.vPosStride, plane + n * l.vPosStride);
        }
      }
    } finally {
      this.rt.free(rows);
    }
    this.stored = n - nDiscard;
  }

  /** Whether shift(nKeep, ...) can run: no exact window, no keys per channel, sinks within the kept prefix. */
  canShift(nKeep: number): boolean {
    return this.shiftRefusal(nKeep) === "";
  }

  /** Why shift(nKeep, ...) cannot run here, or "" when it can. */
  shiftRefusal(nKeep: number): string {
    const windowed = this.windows.findIndex((w) => w > 0);
    if (windowed >= 0) return `layer ${windowed} keeps an exact recent window, whose rows are tied to positions`;
    const channels = this.layouts.findIndex((l) => l.kChannel);
    if (channels >= 0) return `layer ${channels} stores keys per channel in groups of ${KEY_GROUP} positions`;
    const sinks = Math.max(0, ...this.sinkCounts);
    if (nKeep < sinks) return `the ${sinks} exact sinks must stay: keep at least ${sinks} positions`;
    return "";
  }

  /** Position p's keys as f32 (kvDim) at dst: decoded from the layer's format and rotated back when it rotates K. */
  private decodeKeyRow(l: KvLayerLayout, p: number, dst: number): void {
    const k = this.rt.k;
    const decode = k[l.k.kernels.dequantizeRow];
    if (l.headMajor) {
      for (let g = 0; g < this.nKvHeads; g++) decode(l.kPtr + g * l.kHeadStride + p * l.kPosStride, dst + g * this.headDim * 4, this.headDim);
    } else {
      // a padded row decodes into the scratch, then its first kvDim values are kept
      decode(l.kPtr + p * l.kPosStride, this.scratchPtr, l.kRowValues);
      this.rt.f32(dst, this.kvDim).set(this.rt.f32(this.scratchPtr, this.kvDim));
    }
    if (l.rotation.k > 0) k.fwht_f32(dst, dst, l.rotation.k, this.kvDim / l.rotation.k); // H is its own inverse
  }

  /**
   * The byte ranges [ptr, bytes] of `layer`'s storage that hold positions [0, n) as stored: packed K (rows, or
   * groups of keys per channel) and V per kv head plane (or whole rows), the sinks' f16 rows, the window's ring.
   */
  private stateRegions(layer: number, n: number): Array<[number, number]> {
    const l = this.layouts[layer];
    const regions: Array<[number, number]> = [];
    const perHead = (base: number, headStride: number, bytes: number) => {
      for (let g = 0; g < this.nKvHeads; g++) regions.push([base + g * headStride, bytes]);
    };
    if (l.kChannel) perHead(l.kPtr, l.kHeadStride, Math.ceil(n / KEY_GROUP) * l.kGroupBytes);
    else if (l.headMajor) perHead(l.kPtr, l.kHeadStride, n * l.kPosStride);
    else regions.push([l.kPtr, n * l.kRowBytes]);
    if (l.headMajor) perHead(l.vPtr, l.vHeadStride, n * l.vPosStride);
    else regions.push([l.vPtr, n * l.vRowBytes]);
    const exactBytes = (rows: number) => this.nKvHeads * rows * this.headRowBytes;
    if (this.sinkCounts[layer] > 0) regions.push([this.sinkK[layer], exactBytes(this.sinkCounts[layer])], [this.sinkV[layer], exactBytes(this.sinkCounts[layer])]);
    if (this.windows[layer] > 0) regions.push([this.ringK[layer], exactBytes(this.windows[layer])], [this.ringV[layer], exactBytes(this.windows[layer])]);
    return regions;
  }

  /** A copy of what `layer` stores for positions [0, n) (stateRegions, concatenated), and where its window's ring ends. */
  exportLayer(layer: number, n: number): { bytes: Uint8Array; ringEnd: number } {
    this.checkLayer(layer);
    if (!Number.isInteger(n) || n < 0 || n > this.stored) throw new RangeError(`exportLayer: ${n} positions; the cache holds ${this.stored}`);
    const regions = this.stateRegions(layer, n);
    const out = new Uint8Array(regions.reduce((sum, [, b]) => sum + b, 0)); // (Σ region bytes)
    let at = 0;
    for (const [ptr, bytes] of regions) {
      out.set(this.rt.u8(ptr, bytes), at);
      at += bytes;
    }
    return { bytes: out, ringEnd: this.ringEnd[layer] };
  }

  /** Write back what exportLayer gave for positions [0, n) of a cache with the same layout; setLength(n) follows. */
  importLayer(layer: number, n: number, bytes: Uint8Array, ringEnd: number): void {
    this.checkLayer(layer);
    if (!Number.isInteger(n) || n < 0 || n > this.contextSize) throw new RangeError(`importLayer: ${n} positions do not fit in ${this.contextSize}`);
    const regions = this.stateRegions(layer, n);
    const expected = regions.reduce((sum, [, b]) => sum + b, 0);
    if (bytes.length !== expected) throw new RangeError(`layer ${layer}: the state holds ${bytes.length} bytes, this layout needs ${expected} for ${n} positions`);
    let at = 0;
    for (const [ptr, size] of regions) {
      this.rt.u8(ptr, size).set(bytes.subarray(at, at + size));
      at += size;
    }
    this.ringEnd[layer] = this.windows[layer] > 0 ? ringEnd : 0;
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
    if (this.windows[layer] > 0 || this.sinkCounts[layer] > 0) {
      this.appendBatch(layer, pos, 1, kPtr, vPtr);
      return;
    }
    const l = this.layouts[layer];
    const k = this.rt.k;
    const segments = this.segments(l);
    const okK = k.storeRow_packed(l.k.ggmlType, kPtr, this.kvDim, l.kRowValues, l.rotation.k, this.scratchPtr, l.kPtr + pos * l.kPosStride, segments, l.kHeadStride);
    const okV = k.storeRow_packed(l.v.ggmlType, vPtr, this.kvDim, l.vRowValues, l.rotation.v, this.scratchPtr, l.vPtr + pos * l.vPosStride, segments, l.vHeadStride);
    if (!okK || !okV) throw new Error(`layer ${layer}: the attention kernels do not know K format '${l.k.name}' or V format '${l.v.name}'`);
    if (layer === this.nLayers - 1 && pos + 1 > this.stored) this.stored = pos + 1;
  }

  /**
   * Whether appendBatch and attendBatch of `layer` each make one pool run and read nothing it writes afterwards, so
   * that several caches' calls may share a run (ThreadPool.runTogether): not with keys per channel (their groups are
   * quantized from the stored rows after the run) nor an exact window (kept from the staged rows after it).
   */
  runsTogether(layer: number): boolean {
    this.checkLayer(layer);
    return !this.layouts[layer].kChannel && this.windows[layer] === 0;
  }

  /**
   * Store positions firstPos .. firstPos + nTokens − 1 of `layer` at once: k and v are (nTokens, kvDim) f32 at kPtr, vPtr.
   * The same bytes as nTokens append calls; rows are split across the pool's threads.
   */
  appendBatch(layer: number, firstPos: number, nTokens: number, kPtr: number, vPtr: number): void {
    this.checkLayer(layer);
    this.checkBatch(firstPos, nTokens);
    if (nTokens === 0) return;
    const l = this.layouts[layer];
    const rowStride = this.kvDim * 4;
    const segments = this.segments(l);
    const store = (
      format: BlockFormat, src: number, padded: number, rot: number, dst: number, posStride: number, headStride: number, scratchOffset: number,
    ): ParallelTask => ({
      kernel: "storeRows_packed",
      args: [
        0, nTokens, this.scratchPtr + scratchOffset, format.ggmlType, src, rowStride, this.kvDim, padded, rot, dst + firstPos * posStride, posStride,
        segments, headStride,
      ],
      count: nTokens,
      startArg: 0,
      endArg: 1,
      threadArg: { index: 2, base: this.scratchPtr + scratchOffset, stride: this.scratchStride },
      shard: this.rt.shard,
    });
    // keys per channel are stored by group once a group is complete (below), not row by row
    const tasks = [
      ...(l.kChannel ? [] : [store(l.k, kPtr, l.kRowValues, l.rotation.k, l.kPtr, l.kPosStride, l.kHeadStride, 0)]),
      store(l.v, vPtr, l.vRowValues, l.rotation.v, l.vPtr, l.vPosStride, l.vHeadStride, this.rowScratchBytes),
    ];
    const window = this.windows[layer];
    const sinks = this.sinkCounts[layer];
    if (window > 0) {
      // the batch's exact rows (f16 or q8_0), rotated as the packed rows are, after the window's earlier rows in the stage
      const first = this.stageWindow(layer, firstPos, nTokens);
      const headStride = this.stageRows * this.headRowBytes;
      // store() writes position p at base + p·posStride: the stage's row 0 is position `first`
      const base = (stage: number) => stage - first * this.headRowBytes;
      tasks.push(store(this.exactFormat, kPtr, this.kvDim, l.rotation.k, base(this.stageK), this.headRowBytes, headStride, 0));
      tasks.push(store(this.exactFormat, vPtr, this.kvDim, l.rotation.v, base(this.stageV), this.headRowBytes, headStride, this.rowScratchBytes));
    }
    if (firstPos < sinks) {
      // the batch's positions below `sinks`: their exact rows, position p at row p of the layer's sink planes
      const headStride = sinks * this.headRowBytes;
      const n = Math.min(sinks, firstPos + nTokens) - firstPos;
      const sink = (src: number, rot: number, dst: number, scratchOffset: number): ParallelTask => ({
        ...store(this.exactFormat, src, this.kvDim, rot, dst, this.headRowBytes, headStride, scratchOffset),
        count: n,
      });
      tasks.push(sink(kPtr, l.rotation.k, this.sinkK[layer], 0), sink(vPtr, l.rotation.v, this.sinkV[layer], this.rowScratchBytes));
    }
    // an exact-row task shares its side's row scratch with the packed one: a thread runs one chunk at a time
    this.run(tasks);
    if (l.kChannel) this.storeKeyGroups(layer, firstPos, firstPos + nTokens);
    if (window > 0) this.keepWindow(layer, firstPos + nTokens);
    if (layer === this.nLayers - 1 && firstPos + nTokens > this.stored) this.stored = firstPos + nTokens;
  }

  /**
   * Keys per channel: quantize the groups the batch [firstPos, end) completed, groups [ceil((firstPos − 31) / 32),
   * floor(end / 32)), from the stage's exact rows (which hold every position of them: the window is at least a group).
   */
  private storeKeyGroups(layer: number, firstPos: number, end: number): void {
    const l = this.layouts[layer];
    const gFirst = Math.ceil(Math.max(0, firstPos - (KEY_GROUP - 1)) / KEY_GROUP);
    const gEnd = Math.floor(end / KEY_GROUP);
    if (gEnd <= gFirst) return;
    const count = (gEnd - gFirst) * this.nKvHeads;
    const src = this.stageK + (gFirst * KEY_GROUP - this.staged.first) * this.headRowBytes;
    this.run([{
      kernel: "storeKeyGroups_channel",
      args: [
        0, count, this.scratchPtr, l.k.ggmlType, src, this.stageRows * this.headRowBytes, this.nKvHeads, this.headDim,
        l.kPtr + gFirst * l.kGroupBytes, l.kHeadStride, l.k.bytesPerBlock,
      ],
      count,
      startArg: 0,
      endArg: 1,
      threadArg: { index: 2, base: this.scratchPtr, stride: this.scratchStride },
      shard: this.rt.shard,
    }]);
  }

  /**
   * Position `pos`'s keys as `layer` stores them per channel, dequantized: (kvDim) f32, kv head by kv head. The
   * position's group must be complete (its positions appended).
   */
  storedKeys(layer: number, pos: number): Float32Array {
    this.checkLayer(layer);
    const l = this.layouts[layer];
    if (!l.kChannel) throw new RangeError(`layer ${layer} stores one K row per position, not keys per channel: read packedRow`);
    const group = Math.floor(pos / KEY_GROUP);
    if (!Number.isInteger(pos) || pos < 0 || (group + 1) * KEY_GROUP > Math.max(this.stored, this.ringEnd[layer])) {
      throw new RangeError(`position ${pos}: its group of keys is not complete yet`);
    }
    const out = new Float32Array(this.kvDim); // (kvDim)
    const values = new Float32Array(KEY_GROUP); // (KEY_GROUP) one channel of the group
    for (let h = 0; h < this.nKvHeads; h++) {
      for (let c = 0; c < this.headDim; c++) {
        l.k.reference.dequantizeRow(this.keyChannelBlock(layer, h, group, c), values);
        out[h * this.headDim + c] = values[pos % KEY_GROUP];
      }
    }
    return out;
  }

  /**
   * The bytes of channel `channel`'s block in group `group` of kv head `kvHead`, for a layer storing keys per channel
   * (a view of the cache's memory: the block's KEY_GROUP positions in order).
   */
  keyChannelBlock(layer: number, kvHead: number, group: number, channel: number): Uint8Array {
    this.checkLayer(layer);
    const l = this.layouts[layer];
    if (!l.kChannel) throw new RangeError(`layer ${layer} stores one K row per position, not keys per channel: read packedRow`);
    const groups = l.kHeadStride / l.kGroupBytes;
    for (const [name, value, end] of [["kv head", kvHead, this.nKvHeads], ["group", group, groups], ["channel", channel, this.headDim]] as const) {
      if (!Number.isInteger(value) || value < 0 || value >= end) throw new RangeError(`${name} ${value} is not in 0 .. ${end - 1}`);
    }
    return this.rt.u8(l.kPtr + kvHead * l.kHeadStride + group * l.kGroupBytes + channel * l.k.bytesPerBlock, l.k.bytesPerBlock);
  }

  /**
   * Fill the stage with `layer`'s exact rows of positions [first, firstPos) from its ring, first = max(0, firstPos −
   * window), and describe the stage for the kernel (position p at stage row p − first); returns first. The batch's
   * own rows are written after them by appendBatch.
   */
  private stageWindow(layer: number, firstPos: number, nTokens: number): number {
    const W = this.windows[layer];
    const first = Math.max(0, firstPos - W);
    const end = this.ringEnd[layer];
    if (first < firstPos && (firstPos > end || first < end - W)) {
      throw new RangeError(
        `layer ${layer}: positions ${first} .. ${firstPos - 1} of the exact window are not in its f16 rows (it holds ` +
          `${Math.max(0, end - W)} .. ${end - 1}); with a window, append positions in order from 0`,
      );
    }
    if (nTokens + W > this.stageRows) throw new RangeError(`a batch of ${nTokens} tokens exceeds the window stage (${this.stageRows - W} tokens)`);
    const hb = this.headRowBytes;
    this.copyExactRows(layer, first, firstPos, "toStage", first);
    this.staged = { layer, first, end: firstPos + nTokens };
    // based so that position p's row is at kRows + p·posStride (addresses wrap modulo 2^32 in the kernel)
    this.writeExactDescriptor(this.xdescPtr, this.layouts[layer], this.stageK - first * hb, this.stageV - first * hb, this.stageRows);
    return first;
  }

  /**
   * The descriptor of exact rows (a window's stage, sinks; in exactFormat) at `descPtr`: the layer's, with K and V rows
   * at kBase, vBase + p·headRowBytes for position p, one plane of `planeRows` rows per kv head.
   */
  private writeExactDescriptor(descPtr: number, l: KvLayerLayout, kBase: number, vBase: number, planeRows: number): void {
    const d = this.rt.i32(descPtr, LAYER_DESC_SLOTS);
    d.set(this.rt.i32(l.descPtr, LAYER_DESC_SLOTS));
    d[LAYER_DESC.kRows] = kBase | 0;
    d[LAYER_DESC.vRows] = vBase | 0;
    d[LAYER_DESC.kPosStride] = this.headRowBytes;
    d[LAYER_DESC.vPosStride] = this.headRowBytes;
    d[LAYER_DESC.kHeadStride] = planeRows * this.headRowBytes;
    d[LAYER_DESC.vHeadStride] = planeRows * this.headRowBytes;
    d[LAYER_DESC.kType] = this.exactFormat.ggmlType;
    d[LAYER_DESC.vType] = this.exactFormat.ggmlType;
    d[LAYER_DESC.kPartner] = getFormat(this.exactFormat.dotPartner).ggmlType;
    d[LAYER_DESC.kBlock] = d[LAYER_DESC.vBlock] = this.exactFormat.blockSize;
    d[LAYER_DESC.kBlockBytes] = d[LAYER_DESC.vBlockBytes] = this.exactFormat.bytesPerBlock;
    d[LAYER_DESC.kGroupBytes] = 0;
  }

  /** After a batch ending at `end`: the ring keeps `layer`'s last `window` exact rows from the stage. */
  private keepWindow(layer: number, end: number): void {
    this.copyExactRows(layer, Math.max(this.staged.first, end - this.windows[layer]), end, "toRing", this.staged.first);
    this.ringEnd[layer] = end;
  }

  /**
   * Positions [from, to)'s f16 K and V rows of every kv head between `layer`'s ring (slot p % window) and the stage (row
   * p − first), in the direction given: one copy per kv head and side for each run of positions that does not wrap
   * around the ring (a decoded token's window is at most two runs), not one per row.
   */
  private copyExactRows(layer: number, from: number, to: number, direction: "toStage" | "toRing", first: number): void {
    const hb = this.headRowBytes;
    const window = this.windows[layer];
    const u8 = this.rt.u8(0, this.rt.memory.buffer.byteLength);
    const ringBases = [this.ringK[layer], this.ringV[layer]];
    const stageBases = [this.stageK, this.stageV];
    for (let p = from; p < to;) {
      const slot = p % window;
      const run = Math.min(to - p, window - slot); // positions before the ring wraps
      for (let g = 0; g < this.nKvHeads; g++) {
        for (let side = 0; side < 2; side++) {
          const ring = ringBases[side] + (g * window + slot) * hb;
          const stage = stageBases[side] + (g * this.stageRows + (p - first)) * hb;
          const [dst, src] = direction === "toStage" ? [stage, ring] : [ring, stage];
          u8.copyWithin(dst, src, src + run * hb);
        }
      }
      p += run;
    }
  }

  /**
   * A copy of position `pos`'s packed K or V row of `layer` (kRowBytes or vRowBytes: every kv head's blocks in order),
   * gathered from the planes when the layer is head-major: what quantizing the stored row gave, whatever the layout.
   */
  packedRow(layer: number, side: "k" | "v", pos: number): Uint8Array {
    this.checkLayer(layer);
    if (!Number.isInteger(pos) || pos < 0 || pos >= this.contextSize) {
      throw new RangeError(`position ${pos} is outside the cache (0 .. ${this.contextSize - 1})`);
    }
    const l = this.layouts[layer];
    if (side === "k" && l.kChannel) throw new RangeError(`layer ${layer} stores keys per channel, not one K row per position: read storedKeys`);
    const [ptr, rowBytes, posStride, headStride] = side === "k"
      ? [l.kPtr, l.kRowBytes, l.kPosStride, l.kHeadStride]
      : [l.vPtr, l.vRowBytes, l.vPosStride, l.vHeadStride];
    if (!l.headMajor) return this.rt.u8(ptr + pos * posStride, rowBytes).slice();
    const row = new Uint8Array(rowBytes);
    for (let g = 0; g < this.nKvHeads; g++) row.set(this.rt.u8(ptr + g * headStride + pos * posStride, posStride), g * posStride);
    return row;
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
    this.attendItems(layer, nPos - 1, 1, qPtr, outPtr);
  }

  /**
   * Causal attention for a batch: token i (query row i of q, (nTokens, nHeads·headDim) f32) attends positions
   * [0, firstPos + i]; out is (nTokens, nHeads·headDim) f32. Identical to nTokens attend calls with nPos = firstPos + i + 1.
   */
  attendBatch(layer: number, firstPos: number, nTokens: number, qPtr: number, outPtr: number): void {
    this.checkLayer(layer);
    this.checkBatch(firstPos, nTokens);
    if (nTokens === 0) return;
    this.attendItems(layer, firstPos, nTokens, qPtr, outPtr);
  }

  /**
   * The attention kernel over every (token tile, kv head) item (the grouped kernel: a tile's tokens share each decoded
   * row) or (token, head) item, split across the pool.
   */
  private attendItems(layer: number, firstPos: number, nTokens: number, qPtr: number, outPtr: number): void {
    const l = this.layouts[layer];
    const tokensPerItem = l.grouped ? Math.min(nTokens, ATTEND_TOKEN_TILE) : 1;
    const count = l.grouped ? Math.ceil(nTokens / tokensPerItem) * this.nKvHeads : nTokens * this.nHeads;
    const window = this.windows[layer];
    const sinks = this.sinkCounts[layer];
    if (window > 0) {
      const need = Math.max(0, firstPos + 1 - window);
      if (this.staged.layer !== layer || this.staged.first > need || this.staged.end < firstPos + nTokens) {
        throw new RangeError(`layer ${layer}: with an exact window, attention for positions ${firstPos} .. ${firstPos + nTokens - 1} must follow the append of those positions`);
      }
    }
    this.run([{
      kernel: l.grouped ? "attendGrouped_packed" : "attendHeads_packed",
      args: [
        0, count, this.scratchPtr, l.descPtr, qPtr, outPtr, firstPos, window > 0 ? this.xdescPtr : 0, window,
        sinks > 0 ? this.sinkDescs[layer] : 0, sinks, nTokens, tokensPerItem,
      ],
      count,
      startArg: 0,
      endArg: 1,
      threadArg: { index: 2, base: this.scratchPtr, stride: this.scratchStride },
      shard: this.rt.shard,
    }]);
  }

  /** Run tasks on the pool, or here in order when there is none (thread 0's scratch). */
  private run(tasks: ParallelTask[]): void {
    if (this.pool && this.nThreads > 1) {
      this.pool.run(tasks);
      return;
    }
    for (const t of tasks) {
      const args = t.args.slice();
      args[t.startArg] = 0;
      args[t.endArg] = t.count;
      this.rt.k[t.kernel](...args);
    }
  }

  /** Segments a stored row is written in: one per kv head (its plane) when head-major, else the whole row. */
  private segments(l: KvLayerLayout): number {
    return l.headMajor ? this.nKvHeads : 1;
  }

  private writeDescriptor(l: KvLayerLayout): void {
    const d = this.rt.i32(l.descPtr, LAYER_DESC_SLOTS);
    const f = new Float32Array(d.buffer, d.byteOffset, d.length);
    d[LAYER_DESC.nHeads] = this.nHeads;
    d[LAYER_DESC.nKvHeads] = this.nKvHeads;
    d[LAYER_DESC.headDim] = this.headDim;
    f[LAYER_DESC.scale] = this.scale;
    d[LAYER_DESC.kRows] = l.kPtr;
    d[LAYER_DESC.kPosStride] = l.kPosStride;
    d[LAYER_DESC.kType] = l.k.ggmlType;
    d[LAYER_DESC.kPartner] = l.kPartner.ggmlType;
    d[LAYER_DESC.kBlock] = l.k.blockSize;
    d[LAYER_DESC.kBlockBytes] = l.k.bytesPerBlock;
    d[LAYER_DESC.vRows] = l.vPtr;
    d[LAYER_DESC.vPosStride] = l.vPosStride;
    d[LAYER_DESC.vType] = l.v.ggmlType;
    d[LAYER_DESC.vBlock] = l.v.blockSize;
    d[LAYER_DESC.vBlockBytes] = l.v.bytesPerBlock;
    d[LAYER_DESC.rotK] = l.rotation.k;
    d[LAYER_DESC.rotV] = l.rotation.v;
    d[LAYER_DESC.maxPos] = this.contextSize;
    d[LAYER_DESC.headMajor] = l.headMajor ? 1 : 0;
    d[LAYER_DESC.kHeadStride] = l.kHeadStride;
    d[LAYER_DESC.vHeadStride] = l.vHeadStride;
    d[LAYER_DESC.kGroupBytes] = l.kGroupBytes;
  }

  private checkBatch(firstPos: number, nTokens: number): void {
    if (!Number.isInteger(firstPos) || !Number.isInteger(nTokens) || firstPos < 0 || nTokens < 0 || firstPos + nTokens > this.contextSize) {
      throw new RangeError(`batch of ${nTokens} positions from ${firstPos} is outside the cache (0 .. ${this.contextSize - 1})`);
    }
  }

  /** Set the number of positions stored: after a batch has appended positions, or to truncate for reuse. */
  setLength(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.contextSize) {
      throw new RangeError(`cache length ${n} is outside 0 .. ${this.contextSize}`);
    }
    this.stored = n;
  }

  /** Exact bytes of K and V storage: Σ layers kBytes + contextSize × vRowBytes, plus the windows' and sinks' rows. */
  bytes(): number {
    // every layer's ring and sink rows: K and V, one exact row per kv head each (kvExactBytes's count)
    let total = this.windows.reduce((sum, w, i) => sum + 2 * (w + this.sinkCounts[i]) * this.nKvHeads * this.headRowBytes, 0);
    for (const l of this.layouts) total += l.kBytes + this.contextSize * l.vRowBytes;
    return total;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const l of this.layouts) {
      this.rt.free(l.kPtr);
      this.rt.free(l.vPtr);
    }
    this.rt.free(this.descsPtr);
    this.rt.free(this.scratchPtr);
    for (const p of [...this.ringK, ...this.ringV, this.stageK, this.stageV, this.xdescPtr, ...this.sinkK, ...this.sinkV, ...this.sinkDescs]) if (p) this.rt.free(p);
  }

  private checkLayer(layer: number): void {
    if (this.disposed) throw new Error("the KV cache was disposed");
    if (!Number.isInteger(layer) || layer < 0 || layer >= this.nLayers) {
      throw new RangeError(`layer ${layer} is outside 0 .. ${this.nLayers - 1}`);
    }
  }
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
  for (const [name, n] of [["sinks", o.sinks], ["window", o.window]] as const) {
    if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > o.contextSize)) {
      throw new RangeError(`KV cache ${name} must be an integer in 0 .. contextSize (${o.contextSize}), got ${n}`);
    }
  }
  if (o.exactFormat !== undefined && !isExactFormatName(o.exactFormat)) {
    throw new RangeError(`KV cache exactFormat must be one of ${EXACT_FORMAT_NAMES.join(", ")}, got '${o.exactFormat}'`);
  }
  if (o.layers.length !== o.nLayers) {
    throw new RangeError(`KV cache needs one K/V format pair per layer: ${o.nLayers} layers, got ${o.layers.length} pairs`);
  }
  o.layers.forEach((pair, i) => {
    for (const [side, f] of [["K", pair.k], ["V", pair.v]] as const) {
      if (!f.kv) throw new RangeError(`layer ${i}: format '${f.name}' cannot hold the ${side} cache`);
    }
    for (const [name, n] of [["sinks", pair.sinks], ["window", pair.window]] as const) {
      if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > o.contextSize)) {
        throw new RangeError(`KV cache layer ${i}: ${name} must be an integer in 0 .. contextSize (${o.contextSize}), got ${n}`);
      }
    }
  });
}
