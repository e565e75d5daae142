/**
 * A session's KV cache over several WebAssembly memories (shards, src/runtime/shards.ts): the same contract as
 * KvCache (append a batch's K and V rows of a layer, attend a batch's queries, exact bytes), for a model whose layers
 * may live in different memories and whose cache may not fit beside its weights.
 *
 * Placement, once, when the session is created: each layer's K and V go into the shard holding that layer's weights
 * when it has room, else into a shard this session already uses, else into any shard with room, else into a new one.
 * The layers placed in one shard form one KvCache there (local layer numbers). A layer whose cache is in another
 * shard than its weights has its rows copied: k and v (before storing) and q into that shard's staging rows, the
 * attention output back; a few KB per token, against the megabytes of weights a layer reads.
 */
import type { WasmRuntime } from "../runtime/wasm.js";
import { KvCache, kvRowBytes, kvExactBytesOf, layerExactRows, type KvCacheOptions, type KvLayerLayout, type KvThreadPool } from "./cache.js";

/** What placement needs of the model's shards (src/runtime/shards.ts Shards fits). */
export interface KvShardSource {
  readonly runtimes: readonly WasmRuntime[];
  /** A new, empty shard. */
  add(): WasmRuntime;
}

export interface ShardedKvOptions extends Omit<KvCacheOptions, "pool"> {
  /** (nLayers) the shard whose memory holds each layer's input rows (its weights' shard). */
  inputShard: readonly number[];
  /** Tokens per batch at most (staging rows are sized for it). */
  maxTokens: number;
  pool?: KvThreadPool;
}

/** One shard's part of the cache. */
interface KvPart {
  readonly rt: WasmRuntime;
  readonly cache: KvCache;
  /** Staging rows in this shard for layers whose inputs are elsewhere (0 when every layer's inputs are here). */
  readonly q: number; // f32 (maxTokens, nHeads·headDim)
  readonly k: number; // f32 (maxTokens, kvDim)
  readonly v: number; // f32 (maxTokens, kvDim)
  readonly out: number; // f32 (maxTokens, nHeads·headDim)
}

export class ShardedKvCache {
  readonly nLayers: number;
  readonly contextSize: number;
  private readonly parts: KvPart[] = [];
  /** (nLayers) part and local layer of each layer. */
  private readonly where: Array<{ part: KvPart; local: number; input: WasmRuntime }> = [];
  private readonly qDim: number;
  private readonly kvDim: number;
  private disposed = false;

  constructor(shards: KvShardSource, opts: ShardedKvOptions) {
    const { nLayers, inputShard, maxTokens } = opts;
    if (inputShard.length !== nLayers) throw new RangeError(`inputShard has ${inputShard.length} entries for ${nLayers} layers`);
    this.nLayers = nLayers;
    this.contextSize = opts.contextSize;
    this.qDim = opts.nHeads * opts.headDim;
    this.kvDim = opts.nKvHeads * opts.headDim;

    // placement: shard of each layer's cache, planned before anything is allocated
    const layerBytes = opts.layers.map((p) => opts.contextSize * (kvRowBytes(p.k, this.kvDim) + kvRowBytes(p.v, this.kvDim)) + kvExactBytesOf([p], opts, opts.contextSize, this.kvDim));
    const reserved = new Map<WasmRuntime, number>(); // bytes this session will take in each shard
    const chosen: WasmRuntime[] = [];
    const overhead = (rt: WasmRuntime) => this.partOverhead(rt, opts);
    for (let l = 0; l < nLayers; l++) {
      const home = shards.runtimes[inputShard[l]];
      if (!home) throw new RangeError(`layer ${l}: input shard ${inputShard[l]} does not exist`);
      const room = (rt: WasmRuntime) => rt.freeBytes - (reserved.get(rt) ?? overhead(rt)) >= layerBytes[l];
      const rt = [home, ...reserved.keys(), ...shards.runtimes].find(room) ?? shards.add();
      if (!room(rt)) throw new RangeError(`layer ${l}'s KV cache (${layerBytes[l]} bytes) does not fit in one WebAssembly memory`);
      reserved.set(rt, (reserved.get(rt) ?? overhead(rt)) + layerBytes[l]);
      chosen.push(rt);
    }

    try {
      for (const rt of reserved.keys()) {
        const layers = chosen.flatMap((r, l) => (r === rt ? [l] : []));
        const foreign = layers.some((l) => shards.runtimes[inputShard[l]] !== rt);
        const cache = new KvCache(rt, { ...opts, nLayers: layers.length, layers: layers.map((l) => opts.layers[l]), pool: opts.pool });
        const f32 = (perToken: number) => (foreign ? rt.alloc(maxTokens * perToken * 4) : 0);
        const part: KvPart = { rt, cache, q: f32(this.qDim), k: f32(this.kvDim), v: f32(this.kvDim), out: f32(this.qDim) };
        this.parts.push(part);
        layers.forEach((l, local) => (this.where[l] = { part, local, input: shards.runtimes[inputShard[l]] }));
      }
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** Positions stored (in every layer; every part holds the same count). */
  get length(): number {
    return this.parts[0]?.cache.length ?? 0;
  }

  /** Shards this cache occupies. */
  get shards(): number[] {
    return this.parts.map((p) => p.rt.shard);
  }

  /** The layout of `layer` and the shard whose memory its pointers refer to. */
  layout(layer: number): KvLayerLayout & { shard: number } {
    const w = this.at(layer);
    return { ...w.part.cache.layout(w.local), shard: w.part.rt.shard };
  }

  /** Store positions firstPos .. firstPos + n − 1 of `layer`: k and v are (n, kvDim) f32 in the layer's input shard. */
  appendBatch(layer: number, firstPos: number, n: number, kPtr: number, vPtr: number): void {
    const { part, local, input } = this.at(layer);
    if (part.rt === input) {
      part.cache.appendBatch(local, firstPos, n, kPtr, vPtr);
      return;
    }
    copyRows(input, kPtr, part.rt, part.k, n * this.kvDim);
    copyRows(input, vPtr, part.rt, part.v, n * this.kvDim);
    part.cache.appendBatch(local, firstPos, n, part.k, part.v);
  }

  /**
   * Whether appendBatch and attendBatch of `layer` may join other caches' runs (ThreadPool.runTogether): the layer's
   * cache is in its input's shard (no rows copied back after the attention) and KvCache.runsTogether holds.
   */
  runsTogether(layer: number): boolean {
    const { part, local, input } = this.at(layer);
    return part.rt === input && part.cache.runsTogether(local);
  }

  /** Causal attention of a batch (KvCache.attendBatch); q and out are (n, nHeads·headDim) f32 in the layer's input shard. */
  attendBatch(layer: number, firstPos: number, n: number, qPtr: number, outPtr: number): void {
    const { part, local, input } = this.at(layer);
    if (part.rt === input) {
      part.cache.attendBatch(local, firstPos, n, qPtr, outPtr);
      return;
    }
    copyRows(input, qPtr, part.rt, part.q, n * this.qDim);
    part.cache.attendBatch(local, firstPos, n, part.q, part.out);
    copyRows(part.rt, part.out, input, outPtr, n * this.qDim);
  }

  /** A copy of position `pos`'s packed K or V row of `layer` (KvCache.packedRow). */
  packedRow(layer: number, side: "k" | "v", pos: number): Uint8Array {
    const { part, local } = this.at(layer);
    return part.cache.packedRow(local, side, pos);
  }

  /** Set the number of positions stored (after a batch, or to truncate for reuse). */
  /**
   * Context shift over every part (KvCache.shift); `rerope(rt, rowsPtr, nRows)` turns f32 key rows in memory `rt`
   * back by nDiscard positions.
   */
  shift(nKeep: number, nDiscard: number, rerope: (rt: WasmRuntime, rowsPtr: number, nRows: number) => void): void {
    const refusal = this.parts.map((p) => p.cache.shiftRefusal(nKeep)).find((why) => why !== "");
    if (refusal) throw new RangeError(`shift: ${refusal}`);
    for (const p of this.parts) p.cache.shift(nKeep, nDiscard, (rows, n) => rerope(p.rt, rows, n));
  }

  /** Whether shift(nKeep, ...) can run on every part. */
  canShift(nKeep: number): boolean {
    return this.parts.every((p) => p.cache.canShift(nKeep));
  }

  /** What `layer` stores for positions [0, n) (KvCache.exportLayer). */
  exportLayer(layer: number, n: number): { bytes: Uint8Array; ringEnd: number } {
    const w = this.where[layer]!;
    return w.part.cache.exportLayer(w.local, n);
  }

  /** Write back a layer's state (KvCache.importLayer); call setLength(n) once every layer is written. */
  importLayer(layer: number, n: number, bytes: Uint8Array, ringEnd: number): void {
    const w = this.where[layer]!;
    w.part.cache.importLayer(w.local, n, bytes, ringEnd);
  }

  /** Whether any layer keeps an exact recent window (its ring cannot go back to earlier positions). */
  get hasExactWindow(): boolean {
    return this.parts.some((p) => p.cache.windows.some((w) => w > 0));
  }

  setLength(n: number): void {
    for (const p of this.parts) p.cache.setLength(n);
  }

  /** Exact bytes of K and V storage, all shards: Σ layers contextSize × (kRowBytes + vRowBytes). */
  bytes(): number {
    return this.parts.reduce((sum, p) => sum + p.cache.bytes(), 0);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const p of this.parts) {
      p.cache.dispose();
      for (const ptr of [p.q, p.k, p.v, p.out]) if (ptr) p.rt.free(ptr);
    }
  }

  private at(layer: number): { part: KvPart; local: number; input: WasmRuntime } {
    if (this.disposed) throw new Error("the KV cache was disposed");
    const w = this.where[layer];
    if (!w) throw new RangeError(`layer ${layer} is outside 0 .. ${this.nLayers - 1}`);
    return w;
  }

  /** Upper bound of what a part takes in a shard besides K and V: KvCache scratch and descriptors, staging rows. */
  private partOverhead(rt: WasmRuntime, opts: ShardedKvOptions): number {
    const threads = opts.pool?.nThreads ?? 1;
    const attention = Number(rt.k.attendScratchBytes(opts.nHeads, opts.nKvHeads, opts.headDim, opts.contextSize));
    const rowScratch = 2 * (Math.ceil(this.kvDim / 256) * 256 * 4 + 64);
    const window = Math.max(0, ...layerExactRows(opts.layers, opts, opts.contextSize).map((e) => e.window));
    const staging = 4 * opts.maxTokens * 2 * (this.qDim + this.kvDim) + (window ? 2 * (window + opts.maxTokens) * this.kvDim * 2 + 256 : 0);
    return threads * (Math.max(attention, rowScratch) + 64) + opts.nLayers * 128 + staging + 64 * 16;
  }
}

/** dst (in `to`'s memory) = src (in `from`'s memory): `count` f32 values. */
function copyRows(from: WasmRuntime, src: number, to: WasmRuntime, dst: number, count: number): void {
  to.f32(dst, count).set(from.f32(src, count));
}
