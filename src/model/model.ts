/**
 * A loaded model: its config, tokenizer, and weights in WebAssembly memory. Sessions are created from it.
 */
import { parseGguf } from "../gguf/reader.js";
import { fileSource } from "../gguf/source.js";
import type { ByteSource, GgufFile } from "../gguf/types.js";
import type { SessionOptions } from "../api.js";
import { DEFAULT_BATCH_SIZE, DEFAULT_KV, MAX_BATCH_SIZE } from "./defaults.js";
import { existsSync, statSync } from "node:fs";
import { ModelError } from "./errors.js";
import { tokenizerFromGguf, type Tokenizer } from "../tokenizer/index.js";
import { availableParallelism } from "node:os";
import type { ThreadPool } from "../runtime/pool.js";
import { defaultShardBytes, Shards } from "../runtime/shards.js";
import { kernelVariant, type WasmRuntime } from "../runtime/wasm.js";
import { configFromGguf, type ModelConfig } from "./config.js";
import type { ShardScratch } from "./forward.js";
import { Linear } from "./linear.js";
import { checkMemoryPlan, shardScratchBytes } from "./memory.js";
import { RopeRows } from "./rope.js";
import { Session } from "./session.js";
import { RunState } from "./state.js";
import { loadWeights, planWeightPlacement, weightBytes, type LlamaWeights } from "./weights.js";

export interface LoadOptions {
  /** Threads for the kernels: the calling thread + (threads − 1) workers. Default os.availableParallelism(). */
  threads?: number;
  /**
   * The session that will be created, when known (the CLI knows it): its memory plan is checked from the header,
   * before any weight is read, and MemoryPlanError says what would fit.
   */
  session?: Pick<SessionOptions, "contextSize" | "kv" | "kvWindow" | "kvSinks" | "kvExactFormat">;
  /** Bytes one WebAssembly memory may hold (default 4 GiB, or the KVSPLIT_SHARD_BYTES environment variable). */
  shardBytes?: number;
  /** Bytes the model and its sessions may use in all (default: the machine's memory). */
  memoryLimit?: number;
  /**
   * Repack q4_K and q8_0 matrices four rows at a time for the kernels whose lanes are rows (BlockFormat.tiled; same
   * bytes, same bits; about 1.5× faster products with relaxed SIMD). Default: where this process runs the relaxed-SIMD build.
   */
  tileWeights?: boolean;
  /**
   * Tokens one forward pass takes at most (llama.cpp's n_ubatch; default DEFAULT_BATCH_SIZE, 64; at most
   * MAX_BATCH_SIZE): prompts run in batches of this many, and a server step's tokens of all slots together. Larger
   * batches read each weight matrix fewer times; the model's scratch grows by a few hundred KB per token (the logits
   * rows among them).
   */
  batchSize?: number;
}

export class Model {
  private constructor(
    readonly path: string,
    readonly gguf: GgufFile,
    readonly config: ModelConfig,
    readonly tokenizer: Tokenizer,
    /** The WebAssembly memories weights and KV caches live in, and the threads over them. */
    readonly shards: Shards,
    readonly weights: LlamaWeights,
    /** Per weight shard (shards 0 .. n − 1): the forward pass's scratch there, shared by the sessions (they run one at a time). */
    readonly scratch: readonly ShardScratch[],
    /** Bytes the model and its sessions may use in all. */
    readonly memoryLimit: number | undefined,
    /** Tokens one forward pass takes at most (LoadOptions.batchSize). */
    readonly batchSize: number,
  ) {}

  /** Read a GGUF file; throws ModelError (missing file, unsupported or inconsistent model), GgufError (bad file) or MemoryPlanError. */
  static load(path: string, opts: LoadOptions = {}): Model {
    // the CLI's words for a missing path, not the file system's
    if (!existsSync(path)) throw new ModelError("model file not found", path);
    if (!statSync(path).isFile()) throw new ModelError("model file is not a regular file", path);
    const src = fileSource(path);
    try {
      return Model.fromSource(src, opts);
    } finally {
      src.close();
    }
  }

  /**
   * Read a model from any byte source (a browser's File or Origin Private File System handle: src/web/); `src.name`
   * becomes the model's path. The source is read while this runs and may be closed after it.
   */
  static fromSource(src: ByteSource, opts: LoadOptions = {}): Model {
    let shards: Shards | undefined;
    try {
      const gguf = parseGguf(src);
      const config = configFromGguf(gguf);
      const tokenizer = tokenizerFromGguf(gguf);
      const { threads, batchSize } = loadSizing(opts);
      const shardBytes = opts.shardBytes ?? defaultShardBytes();
      const perShard = shardScratchBytes(config, threads, batchSize);
      const placement = planWeightPlacement(gguf, config, shardBytes, perShard);
      if (opts.session) {
        const { contextSize = config.contextLength, kv = DEFAULT_KV, kvWindow = 0, kvSinks = 0, kvExactFormat } = opts.session;
        checkMemoryPlan(config, weightBytes(gguf), contextSize, kv, {
          threads, batchTokens: batchSize, shardBytes, available: opts.memoryLimit, window: kvWindow, sinks: kvSinks, exactFormat: kvExactFormat,
        });
      }
      const memories = (shards = new Shards(shardBytes, threads));
      const weights = loadWeights(memories, gguf, src, config, placement, opts.tileWeights ?? kernelVariant() === "relaxed");
      const maxCols = Math.max(config.dim, config.ffnDim, config.nHeads * config.headDim);
      const scratch = placement.shardWeights.map((_, s): ShardScratch => {
        const rt = memories.runtimes[s];
        const linear = new Linear(rt, maxCols, memories.pool);
        return {
          rt,
          k: rt.k,
          linear,
          rows: linear.rows,
          rope: RopeRows.forModel(rt, batchSize, config, weights),
          state: new RunState(rt, config, batchSize),
          pool: memories.pool,
        };
      });
      return new Model(src.name, gguf, config, tokenizer, memories, weights, scratch, opts.memoryLimit, batchSize);
    } catch (e) {
      shards?.dispose();
      throw e;
    }
  }

  /** Threads the kernels run on; sessions share them. */
  get pool(): ThreadPool {
    return this.shards.pool;
  }

  /** Shard 0's runtime: the embedding, the output and the first layers (the only one for models under 4 GiB). */
  get runtime(): WasmRuntime {
    return this.shards.runtimes[0];
  }

  createSession(opts: SessionOptions = {}): Session {
    return new Session(this, opts);
  }

  /**
   * Stops the worker threads. Weights live in this model's own WebAssembly memory; dropping the model frees it.
   * (A model dropped without dispose() has its workers stopped when it is garbage collected.)
   */
  dispose(): void {
    this.shards.dispose();
  }
}

/**
 * The threads and batch size a load sizes its scratch for: the options', else the machine's threads and
 * DEFAULT_BATCH_SIZE (a batch size outside 1..MAX_BATCH_SIZE is a RangeError). `kvsplit plan` sizes its plans by it too.
 */
export function loadSizing(opts: Pick<LoadOptions, "threads" | "batchSize">): { threads: number; batchSize: number } {
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new RangeError(`batchSize must be an integer from 1 to ${MAX_BATCH_SIZE}, got ${batchSize}`);
  }
  return { threads: opts.threads ?? availableParallelism(), batchSize };
}

export function loadModel(path: string, opts: LoadOptions = {}): Model {
  return Model.load(path, opts);
}
