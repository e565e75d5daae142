/**
 * The llama.cpp side of `kvsplit bench`: node-llama-cpp (an optional package, loaded with a dynamic import) running
 * the same method as kvsplit (bench.ts `measureRun`) with the same tokens, threads and context size.
 *
 * Settings: prebuilt CPU binary (`gpu: false, build: "never"`), `maxThreads` and context `threads` both T;
 * flash attention on for every config (quantized V needs it; DESIGN.md section 6's anchors use it for all);
 * `experimentalKvCacheKeyType/ValueType` for the K/V formats; batchSize BENCH_BATCH_SIZE (node-llama-cpp sets
 * n_ubatch = n_batch); llama.cpp's K/V rotation left at its default (on), like kvsplit's.
 * Batches go through `evaluateWithoutGeneratingNewTokens`; generation through `evaluate` (greedy, temperature 0), one
 * token per step, each step computing logits and sampling as llama-bench's tg does.
 */
import { llamaCppKvTypeKey } from "./llamacpp-kv-type.js";
import { BENCH_BATCH_SIZE, kvBytesByArithmetic, measureRun, type BenchEngineSession, type BenchJob, type BenchRunResult } from "./bench.js";

/** The exact version the project is tested with (newer lockfiles failed `npm ci` on this registry). */
export const NODE_LLAMA_CPP_VERSION = "3.21.1";

/** node-llama-cpp is not installed (it is optional: only `--vs llama.cpp` needs it). */
export class LlamaCppUnavailableError extends Error {
  constructor(cause: string) {
    super(
      `--vs llama.cpp needs the optional package node-llama-cpp, which could not be loaded (${cause}); ` +
        `install it with: npm install node-llama-cpp@${NODE_LLAMA_CPP_VERSION}`,
    );
    this.name = "LlamaCppUnavailableError";
  }
}

type NodeLlamaCpp = typeof import("node-llama-cpp");
type LlamaContextSequence = import("node-llama-cpp").LlamaContextSequence;
type Token = import("node-llama-cpp").Token;

/** Import node-llama-cpp, or throw LlamaCppUnavailableError saying how to install it. */
export async function importNodeLlamaCpp(): Promise<NodeLlamaCpp> {
  try {
    return await import("node-llama-cpp");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new LlamaCppUnavailableError(code === "ERR_MODULE_NOT_FOUND" ? "not installed" : (err as Error).message);
  }
}

/** A llama.cpp context sequence seen through the method's interface. */
class LlamaCppBenchSession implements BenchEngineSession {
  constructor(private readonly sequence: LlamaContextSequence) {}

  get position(): number {
    return this.sequence.nextTokenIndex;
  }

  async reset(): Promise<void> {
    await this.sequence.clearHistory();
  }

  async evalBatch(tokens: number[]): Promise<void> {
    await this.sequence.evaluateWithoutGeneratingNewTokens(tokens as Token[]);
  }

  async generate(first: number, count: number): Promise<void> {
    if (count <= 0) return;
    // Each step of the generator evaluates one token (the input, then each generated one) and samples the next.
    let generated = 0;
    for await (const _token of this.sequence.evaluate([first as Token], { temperature: 0, yieldEogToken: true })) {
      if (++generated >= count) break;
    }
  }
}

/** One llama.cpp run in this process; K/V bytes are the format arithmetic at the context size llama.cpp created. */
export async function runLlamaCppJob(job: BenchJob): Promise<BenchRunResult> {
  const { k, v } = job;
  if (job.layers || k === "mixed" || v === "mixed") throw new RangeError(`${job.config}: llama.cpp has one K/V type for every layer, not a per-layer schedule`);
  if (job.window || job.sinks) throw new RangeError(`${job.config}: llama.cpp keeps no exact window or sinks`);
  if (job.kLayout) throw new RangeError(`${job.config}: llama.cpp stores keys per position, not per channel`);
  const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
  const llama = await getLlama({
    gpu: false,
    build: "never",
    maxThreads: job.threads,
    logLevel: LlamaLogLevel.error,
    logger(_level, message) {
      process.stderr.write(`llama.cpp: ${message.endsWith("\n") ? message : message + "\n"}`);
    },
  });
  try {
    const model = await llama.loadModel({ modelPath: job.modelPath, gpuLayers: 0 });
    try {
      const context = await model.createContext({
        contextSize: job.contextSize,
        batchSize: BENCH_BATCH_SIZE,
        sequences: 1,
        threads: { ideal: job.threads, min: job.threads },
        flashAttention: true,
        experimentalKvCacheKeyType: llamaCppKvTypeKey(k),
        experimentalKvCacheValueType: llamaCppKvTypeKey(v),
      });
      try {
        const sequence = context.getSequence();
        const { ppTps, tgTps } = await measureRun(new LlamaCppBenchSession(sequence), job);
        const contextSize = context.contextSize;
        return {
          engine: "llama.cpp",
          config: job.config,
          ppTps,
          tgTps,
          kvBytes: kvBytesByArithmetic(k, v, job.nLayers, job.kvDim, contextSize),
          contextSize,
          rssPeakBytes: 0,
        };
      } finally {
        await context.dispose();
      }
    } finally {
      await model.dispose();
    }
  } finally {
    await llama.dispose();
  }
}
