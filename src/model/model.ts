/**
 * A loaded model: its config, tokenizer, and weights in WebAssembly memory. Sessions are created from it.
 */
import { parseGguf } from "../gguf/reader.js";
import { fileSource } from "../gguf/source.js";
import type { GgufFile } from "../gguf/types.js";
import type { SessionOptions } from "../api.js";
import { tokenizerFromGguf, type Tokenizer } from "../tokenizer/index.js";
import { availableParallelism } from "node:os";
import { ThreadPool } from "../runtime/pool.js";
import { WasmRuntime } from "../runtime/wasm.js";
import { configFromGguf, type ModelConfig } from "./config.js";
import { Session } from "./session.js";
import { loadWeights, type LlamaWeights } from "./weights.js";

export interface LoadOptions {
  /** Threads for the kernels: the calling thread + (threads − 1) workers. Default os.availableParallelism(). */
  threads?: number;
}

export class Model {
  private constructor(
    readonly path: string,
    readonly gguf: GgufFile,
    readonly config: ModelConfig,
    readonly tokenizer: Tokenizer,
    readonly runtime: WasmRuntime,
    readonly weights: LlamaWeights,
    /** Threads the kernels run on; sessions share it. */
    readonly pool: ThreadPool,
  ) {}

  /** Read a GGUF file; throws GgufError (bad file) or ModelError (unsupported or inconsistent model). */
  static load(path: string, opts: LoadOptions = {}): Model {
    const src = fileSource(path);
    try {
      const gguf = parseGguf(src);
      const config = configFromGguf(gguf);
      const tokenizer = tokenizerFromGguf(gguf);
      const runtime = new WasmRuntime();
      const weights = loadWeights(runtime, gguf, src, config);
      const pool = new ThreadPool(runtime.memory, opts.threads ?? availableParallelism(), runtime.module);
      return new Model(path, gguf, config, tokenizer, runtime, weights, pool);
    } finally {
      src.close();
    }
  }

  createSession(opts: SessionOptions = {}): Session {
    return new Session(this, opts);
  }

  /**
   * Stops the worker threads. Weights live in this model's own WebAssembly memory; dropping the model frees it.
   * (A model dropped without dispose() has its workers stopped when it is garbage collected.)
   */
  dispose(): void {
    this.pool.dispose();
  }
}

export function loadModel(path: string, opts: LoadOptions = {}): Model {
  return Model.load(path, opts);
}
