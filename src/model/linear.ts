/**
 * Matrix products over packed weights: out[t] = W · x[t] for each of nTokens inputs.
 * The input is converted once to each dot-partner format its matrices need (q8_0 for q8_0/q4_0 weights,
 * f16 for f16 weights, ...), as llama.cpp does, then each matrix's own matvec (one token) or matmul (a batch) kernel runs on it.
 *
 * Batches of at least wideMinTokens(format) tokens take the "wide" path where the weight format has one: matmulWide_<fmt>
 * decodes each weight row once into per-thread scratch and dots it with every token, equal to matvec bit for bit.
 * Matrices repacked into four-row tiles at load (WeightMatrix.tiled: q4_K, q8_0 with the relaxed build) take their
 * format's tiled kernels instead (q8_0: against the input in their own split layout, TiledKernels.input), and from
 * wideMinTokens(format, true) tokens matmulWide_<fmt>_x4 where there is one.
 *   q8_0-partner weights (q8_0, q4_0, q5_0, iq4_nl; assembly/formats/matmul-wide.ts): the q8_0 input is further
 *     widened once into an interleaved layout (int16 in the plain build; int8 and its negation in the relaxed one).
 *   K-quants (q2_K .. q6_K; assembly/formats/matmul-wide-k.ts): rows widened to levels and group scales in "quad
 *     order", against the q8_K input in the same order (quantizeRowsWide_q8_K).
 *
 * Threads: every matrix's rows are split across the pool's threads (grain ROW_GRAIN), and all the products of one
 * run() go to the pool as ONE run (q, k, v together; gate and up together), so a layer costs a few syncs. Each row
 * is computed by one thread with the same kernel, so the result is bit-identical for every thread count.
 */
import { TILE_GROUP_ROWS, type BlockFormat, type FormatName } from "../formats/types.js";
import { getFormat, rowBytes } from "../formats/table.js";
import type { ParallelTask, ThreadArg, ThreadPool } from "../runtime/pool.js";
import type { WasmRuntime } from "../runtime/wasm.js";
import type { WeightMatrix } from "./weights.js";
import { RowRunner } from "./rows.js";

/** One product of a run(): out (f32, (nTokens, w.rows)) = x · Wᵀ for the current input x. */
export type MatvecJob = readonly [outPtr: number, w: WeightMatrix];

/**
 * Split boundaries fall on multiples of this many rows: keeps multi-row kernel passes and output cache lines aligned,
 * and tiled products' ranges on their groups of tiles (TILE_GROUP_ROWS).
 */
export const ROW_GRAIN = TILE_GROUP_ROWS;
/** Below this many weight bytes per run (× tokens; ~35 µs of one thread's work) a sync (15–70 µs) is not worth it. */
export const SERIAL_BYTES = 256 * 1024;
/**
 * Batches of at least this many tokens use matmulWide_<fmt> (below, widening rows costs more than it saves): per
 * weight format where measured, else WIDE_MIN_TOKENS. Measured on the TinyLlama shape, 2 threads, ms per token,
 * widened rows / per-token dots (alternating runs):
 *   q8_0: 33.0 / 35.0 at 2 tokens, 31.0 / 35.9 at 3, 25.5 / 34.6 at 4
 *   q5_0: 49.4 / 39.5 at 2, 40.6 / 43.5 at 3, 31.5 / 37.6 at 4
 *   q4_0: 35.3 / 27.9 at 2, 31.5 / 27.8 at 3, 24.7 / 26.5 at 4 (its 2-token dots have a relaxed-SIMD path)
 *   iq4_nl: 56.5 / 45.5 at 2, 45.7 / 46.7 at 3, 34.4 / 42.1 at 4 (before its relaxed dots, which took 2 tokens to 37.9)
 * and for the K-quants, whose rows are widened in quad order with their scales decoded as vectors (q4_K, the kernels
 * alone: the input's quantization and the product of a 5632 × 2048 matrix, one thread, medians of 12 alternating
 * runs, ms for the batch): 2.03 / 1.61 at 3 tokens, 1.93 / 2.18 at 4, 2.81 / 4.31 at 8 (before quad order they paid
 * from 9 tokens).
 */
const WIDE_MIN_TOKENS = 4;
const WIDE_MIN_TOKENS_OF: Partial<Record<FormatName, number>> = { q8_0: 2, q5_0: 3 };

/**
 * Over tiled weights (BlockFormat.tiled) the tiled kernels take batches below this many tokens, matmulWide_<fmt>_x4
 * (tiles laid back out as rows, then widened) larger ones. q8_0, one thread, 2048 × 2048, ms for the batch, medians of
 * 7, matmul_q8_0_x4 / matmulWide_q8_0_x4: 0.241 / 0.473 at 2 tokens, 0.431 / 0.641 at 4, 0.875 / 1.007 at 8,
 * 1.724 / 1.703 at 16, 6.940 / 5.839 at 64 (the split input's two dots per 16 products against the widened rows'
 * dot and select; matvec_q8_0_x4: 0.157 against matvec_q8_0's 0.236). Where the tiles took the layout of one dot per 16
 * products (TiledKernels.oneDot) the tiled kernels take every batch: 0.663 / 1.235 at 8 tokens, 1.274 / 1.961 at 16,
 * 5.132 / 6.559 at 64 (one run of bench/weight-kernels.ts on an x64 with AVX-VNNI).
 */
const TILED_WIDE_MIN_TOKENS_OF: Partial<Record<FormatName, number>> = { q8_0: 16 };

/**
 * The smallest batch that takes matmulWide_<fmt> (tiled: matmulWide_<fmt>_x4) for weights of `format`; oneDot: the
 * tiles took the layout of one dot per 16 products (TiledKernels.oneDot).
 */
export function wideMinTokens(format: BlockFormat, tiled = false, oneDot = false): number {
  if (tiled) return oneDot ? Infinity : (TILED_WIDE_MIN_TOKENS_OF[format.name] ?? Infinity);
  return WIDE_MIN_TOKENS_OF[format.name] ?? WIDE_MIN_TOKENS;
}
/** Bytes of one row of `cols` values in the wide layout (assembly/formats/matmul-wide.ts: 272 bytes per 128 values). */
export function wideRowBytes(cols: number): number {
  return Math.ceil(Math.floor(cols / 32) / 4) * 272;
}
/** Bytes of one K-quant weight row of `cols` values widened (assembly/formats/matmul-wide-k.ts: 560 bytes per 256 values). */
export function wideRowBytesK(cols: number): number {
  return Math.floor(cols / 256) * 560;
}
/**
 * Bytes of one thread's scratch for every matmulWide_<fmt>[_x4] over rows of at most `cols` values: two widened weight
 * rows, and for matmulWide_q8_0_x4 after them a tile's four q8_0 rows.
 */
export function wideScratchBytes(cols: number): number {
  return 2 * Math.max(wideRowBytes(cols), wideRowBytesK(cols)) + 4 * rowBytes(getFormat("q8_0"), cols);
}

interface ConvertedInput {
  ptr: number; // (nTokens, partner row bytes of cols): the current input in the partner format
  capacity: number; // bytes allocated at ptr
  valid: boolean;
}

export class Linear {
  /** Per partner format: scratch holding the current input in that format. */
  private readonly converted = new Map<FormatName, ConvertedInput>();
  private xPtr = 0; // f32 (nTokens, cols): the current input
  private cols = 0;
  private nTokens = 1;
  /** Reused task objects and batch array: run() allocates nothing once warm. */
  private readonly taskPool: ParallelTask[] = [];
  private readonly batch: ParallelTask[] = [];
  /** Per partner format: the current input in its wide layout (quantizeRowsWide_<partner>), when a wide product needs it. */
  private readonly wide = new Map<FormatName, ConvertedInput>();
  /** Per input layout of tiled kernels (TiledKernels.input, keyed by its quantizeRows export): the current input in it. */
  private readonly tiledInputs = new Map<string, ConvertedInput>();
  /** Per tiled format: whether this memory's kernels took its layout of one dot per 16 products (tiledOneDot). */
  private readonly oneDot = new Map<FormatName, boolean>();
  /** Per-thread scratch of matmulWide_<fmt>[_x4]: (nThreads, wideScratchBytes(maxCols) rounded up to 64 bytes). */
  private wideScratch = 0;
  /** matmulWide_<fmt>'s scratch argument (index 8) per thread; shared by every wide task. */
  private wideThreadArg: ThreadArg | undefined;
  /** The tiled products' scratch argument per thread ((nThreads, tiledScratchBytes())), last of matvec's (index 6) and matmul's (9). */
  private tiledThreadArgs: { matvec: ThreadArg; matmul: ThreadArg } | undefined;

  /** Row-wise kernels across the threads: here the activations' wide quantization; the forward pass's swiglu too. */
  readonly rows: RowRunner;

  constructor(
    private readonly rt: WasmRuntime,
    private readonly maxCols: number,
    private readonly pool?: ThreadPool,
  ) {
    this.rows = new RowRunner(rt, pool);
  }

  /** Make `xPtr` (f32, (nTokens, cols)) the input of the following run() calls. */
  input(xPtr: number, cols: number, nTokens = 1): void {
    if (cols > this.maxCols) throw new RangeError(`input has ${cols} values per token; this Linear was made for at most ${this.maxCols}`);
    if (!Number.isInteger(nTokens) || nTokens < 1) throw new RangeError(`nTokens must be a positive integer, got ${nTokens}`);
    this.xPtr = xPtr;
    this.cols = cols;
    this.nTokens = nTokens;
    for (const c of this.converted.values()) c.valid = false;
    for (const c of this.wide.values()) c.valid = false;
    for (const c of this.tiledInputs.values()) c.valid = false;
  }

  /** out (f32, (nTokens, W.rows)) = x · Wᵀ for the current input. */
  matvec(outPtr: number, w: WeightMatrix): void {
    this.run([[outPtr, w]]);
  }

  /**
   * Every product in `jobs` for the current input, as one parallel run (they must not write each other's inputs).
   * Outputs are (nTokens, rows) row-major f32.
   */
  run(jobs: readonly MatvecJob[]): void {
    let bytes = 0;
    for (const [, w] of jobs) {
      if (w.cols !== this.cols) throw new RangeError(`${w.name}: ${w.cols} columns but the input has ${this.cols} values`);
      if (w.shard !== this.rt.shard) throw new RangeError(`${w.name} is in shard ${w.shard}; this Linear runs in shard ${this.rt.shard}`);
      bytes += w.rows * w.rowBytes;
    }
    const serial = !this.pool || this.pool.nThreads === 1 || bytes * this.nTokens < SERIAL_BYTES;
    this.batch.length = 0;
    for (const [outPtr, w] of jobs) {
      const task = this.usesWide(w) ? this.wideTask(this.batch.length, w, outPtr) : this.task(this.batch.length, w, this.inputOf(w), outPtr);
      if (serial) this.rt.k[task.kernel](...task.args);
      else this.batch.push(task);
    }
    if (!serial) this.pool!.run(this.batch);
  }

  dispose(): void {
    for (const c of [...this.converted.values(), ...this.wide.values(), ...this.tiledInputs.values()]) this.rt.free(c.ptr);
    this.converted.clear();
    this.wide.clear();
    this.tiledInputs.clear();
    if (this.wideScratch) this.rt.free(this.wideScratch);
    this.wideScratch = 0;
    this.wideThreadArg = undefined;
    if (this.tiledThreadArgs) this.rt.free(this.tiledThreadArgs.matvec.base);
    this.tiledThreadArgs = undefined;
  }

  private usesWide(w: WeightMatrix): boolean {
    return this.nTokens >= wideMinTokens(w.format, w.tiled, w.tiled && this.tiledOneDot(w.format)) && typeof this.rt.k[wideKernel(w.format, w.tiled)] === "function";
  }

  /** Whether this memory's kernels took the tiled layout of one dot per 16 products for `format` (TiledKernels.oneDot). */
  private tiledOneDot(format: BlockFormat): boolean {
    let one = this.oneDot.get(format.name);
    if (one === undefined) {
      const name = format.tiled?.oneDot;
      one = name !== undefined && Boolean(this.rt.k[name]());
      this.oneDot.set(format.name, one);
    }
    return one;
  }

  /**
   * Reused task `i`, set to: rows [0, W.rows) of X · Wᵀ into out with matmulWide_<fmt>, split across threads by rows,
   * each thread widening its weight rows into its own scratch, against the input in its partner's wide layout.
   */
  private wideTask(i: number, w: WeightMatrix, outPtr: number): ParallelTask {
    const x = w.format.dotPartner === "q8_0" ? this.wideInputQ8_0() : this.wideInputQ8_K();
    if (!this.wideThreadArg) {
      const stride = Math.ceil(wideScratchBytes(this.maxCols) / 64) * 64;
      this.wideScratch = this.rt.alloc(stride * (this.pool?.nThreads ?? 1));
      this.wideThreadArg = { index: 8, base: this.wideScratch, stride };
    }
    const t = this.task(i, w, x, outPtr);
    t.kernel = wideKernel(w.format, w.tiled);
    // matmulWide_<fmt>(w, xWide, out, rowStart, rowEnd, cols, nTokens, outStride, scratch)
    t.args.length = 0;
    t.args.push(w.ptr, x, outPtr, 0, w.rows, w.cols, this.nTokens, w.rows * 4, this.wideScratch);
    t.threadArg = this.wideThreadArg;
    return t;
  }

  /**
   * Byte offset of the current input as wide q8_0 ((nTokens, wideRowBytes(cols))); its q8_0 form is made on the way
   * (quantizeRowsWide_q8_0).
   */
  private wideInputQ8_0(): number {
    const q8 = this.slot(getFormat("q8_0"));
    const wide = this.scratchFor(this.wide, "q8_0", wideRowBytes(this.cols) * this.nTokens, wideRowBytes(this.maxCols));
    if (!wide.valid) {
      // quantizeRowsWide_q8_0(x, q8, wide, rowStart, rowEnd, cols)
      this.rows.run("quantizeRowsWide_q8_0", [this.xPtr, q8.ptr, wide.ptr, 0, this.nTokens, this.cols], 3, 4, this.nTokens, this.cols);
      q8.valid = true;
      wide.valid = true;
    }
    return wide.ptr;
  }

  /** Byte offset of the current input as wide q8_K ((nTokens, q8_K row bytes): values in quad order). */
  private wideInputQ8_K(): number {
    const q8K = getFormat("q8_K");
    const wide = this.scratchFor(this.wide, "q8_K", rowBytes(q8K, this.cols) * this.nTokens, rowBytes(q8K, this.maxCols));
    if (!wide.valid) {
      // quantizeRowsWide_q8_K(x, wide, rowStart, rowEnd, cols)
      this.rows.run("quantizeRowsWide_q8_K", [this.xPtr, wide.ptr, 0, this.nTokens, this.cols], 2, 3, this.nTokens, this.cols);
      wide.valid = true;
    }
    return wide.ptr;
  }

  /**
   * Reused task `i`, set to: rows [0, W.rows) of X · Wᵀ into out, split across threads by rows. One token uses the
   * matvec kernel, several the matmul kernel (each weight row read once for all tokens; equal to matvec bit for bit).
   */
  private task(i: number, w: WeightMatrix, x: number, outPtr: number): ParallelTask {
    let t = this.taskPool[i];
    if (!t) {
      t = { kernel: "", args: [], count: 0, startArg: 3, endArg: 4, grain: ROW_GRAIN };
      this.taskPool[i] = t;
    }
    t.count = w.rows;
    t.shard = this.rt.shard;
    t.threadArg = undefined;
    t.args.length = 0;
    const kernels = w.tiled ? w.format.tiled! : w.format.kernels;
    if (this.nTokens === 1) {
      t.kernel = kernels.matvec; // matvec_<fmt>(w, x, out, rowStart, rowEnd, cols); _x4: then scratch
      t.args.push(w.ptr, x, outPtr, 0, w.rows, w.cols);
    } else {
      // matmul_<fmt>(w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride); _x4: then scratch
      t.kernel = kernels.matmul;
      const xStride = this.inputRowBytes(w, w.cols);
      t.args.push(w.ptr, x, outPtr, 0, w.rows, w.cols, this.nTokens, xStride, w.rows * 4);
    }
    if (w.tiled) {
      const scratch = this.tiledScratch();
      t.threadArg = this.nTokens === 1 ? scratch.matvec : scratch.matmul;
      t.args.push(t.threadArg.base);
    }
    return t;
  }

  /** The tiled products' per-thread scratch (allocated on first use). */
  private tiledScratch(): { matvec: ThreadArg; matmul: ThreadArg } {
    if (!this.tiledThreadArgs) {
      const stride = Math.ceil(this.rt.k.tiledScratchBytes() / 64) * 64;
      const base = this.rt.alloc(stride * (this.pool?.nThreads ?? 1));
      this.tiledThreadArgs = { matvec: { index: 6, base, stride }, matmul: { index: 9, base, stride } };
    }
    return this.tiledThreadArgs;
  }

  /** Byte offset of the current input as w's kernels take it: (nTokens, inputRowBytes(w, cols)). */
  private inputOf(w: WeightMatrix): number {
    const own = w.tiled ? w.format.tiled!.input : undefined;
    if (!own) return this.inputFor(w.format);
    const partner = this.slot(getFormat(w.format.dotPartner));
    const entry = this.scratchFor(this.tiledInputs, own.quantizeRows, this.inputRowBytes(w, this.cols) * this.nTokens, this.inputRowBytes(w, this.maxCols));
    if (!entry.valid) {
      // <quantizeRows>(x, partner, dst, rowStart, rowEnd, cols): the partner's rows on the way
      this.rows.run(own.quantizeRows, [this.xPtr, partner.ptr, entry.ptr, 0, this.nTokens, this.cols], 3, 4, this.nTokens, this.cols);
      partner.valid = true;
      entry.valid = true;
    }
    return entry.ptr;
  }

  /** Bytes of one token's input row of `cols` values as w's kernels take it (the partner's, or the tiled kernels' own layout). */
  private inputRowBytes(w: WeightMatrix, cols: number): number {
    const own = w.tiled ? w.format.tiled!.input : undefined;
    const partner = getFormat(w.format.dotPartner);
    return own ? (cols / partner.blockSize) * own.bytesPerBlock : rowBytes(partner, cols);
  }

  /** Byte offset of the current input converted to `format`'s dot partner ((nTokens, partner row bytes)). */
  private inputFor(format: BlockFormat): number {
    const partner = getFormat(format.dotPartner);
    if (partner.name === "f32") return this.xPtr;
    const slot = this.slot(partner);
    if (!slot.valid) {
      // partner rows are packed (nTokens, stride), as quantizeRowsWide_q8_0 writes them; split across threads where
      // the partner has a row-range kernel (quantizeRows_<partner>(src, dst, rowStart, rowEnd, cols))
      const rowsKernel = `quantizeRows_${partner.name}`;
      if (typeof this.rt.k[rowsKernel] === "function") {
        this.rows.run(rowsKernel, [this.xPtr, slot.ptr, 0, this.nTokens, this.cols], 2, 3, this.nTokens, this.cols);
      } else {
        const stride = rowBytes(partner, this.cols);
        const quantize = this.rt.k[partner.kernels.quantizeRow];
        for (let t = 0; t < this.nTokens; t++) quantize(this.xPtr + t * this.cols * 4, slot.ptr + t * stride, this.cols);
      }
      slot.valid = true;
    }
    return slot.ptr;
  }

  /** The scratch for the current input in `partner` format, large enough for it (contents valid or not). */
  private slot(partner: BlockFormat): ConvertedInput {
    return this.scratchFor(this.converted, partner.name, rowBytes(partner, this.cols) * this.nTokens, rowBytes(partner, this.maxCols));
  }

  /** The entry `name` of `scratch`, reallocated when smaller than `need` bytes (at least `least` bytes). */
  private scratchFor<K extends string>(scratch: Map<K, ConvertedInput>, name: K, need: number, least: number): ConvertedInput {
    let entry = scratch.get(name);
    if (entry && entry.capacity < need) {
      this.rt.free(entry.ptr);
      entry = undefined;
    }
    if (!entry) {
      const capacity = Math.max(need, least);
      entry = { ptr: this.rt.alloc(capacity), capacity, valid: false };
      scratch.set(name, entry);
    }
    return entry;
  }
}

/** Per format: matmulWide_<fmt> over rows and matmulWide_<fmt>_x4 over tiles (cached: run() allocates nothing once warm). */
const wideKernelNames = new Map<FormatName, { rows: string; tiled: string }>();
function wideKernel(format: BlockFormat, tiled: boolean): string {
  let names = wideKernelNames.get(format.name);
  if (names === undefined) {
    names = { rows: `matmulWide_${format.name}`, tiled: `matmulWide_${format.name}_x4` };
    wideKernelNames.set(format.name, names);
  }
  return tiled ? names.tiled : names.rows;
}
