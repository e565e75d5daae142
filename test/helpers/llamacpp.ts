/**
 * The llama.cpp oracle for tests and measurements: node-llama-cpp 3.21.1 with its prebuilt CPU binary, 2 threads.
 * Models are loaded once per path and kept until `closeLlama()`.
 *
 * Facts this relies on (checked against node-llama-cpp's addon sources and llama.cpp's src/llama-kv-cache.cpp):
 * - `generateNext.probabilities` with the default options (temperature 0 -> a greedy sampler only, which selects but
 *   never changes logits) returns every vocabulary entry: float32 softmax (expf(logit - max) / sum) of the raw logits.
 *   log(p) is therefore the log-softmax of the raw logits up to float32 rounding; rows are re-normalised in float64.
 * - llama.cpp reads LLAMA_ATTN_ROT_DISABLE with getenv() in the llama_kv_cache constructor, i.e. at context creation,
 *   so setting process.env (Node calls setenv) just before createContext switches the rotation per context.
 *   Rotation applies only to quantized K (V) with head_dim a multiple of 64.
 * - Quantized V needs flash attention; an f32 cache is an fp32 reference only with flash attention off (with it on,
 *   llama.cpp converts f32 K/V to f16).
 * - Context sizes are padded up to multiples of 256; the context is made longer than the evaluated tokens because this
 *   llama.cpp build crashed when it was exactly as long with rotation off.
 */
import { getLlama, LlamaLogLevel, type ControlledEvaluateInputItem, type Llama, type LlamaModel, type Token } from "node-llama-cpp";
import type { KvFormatName } from "../../src/formats/types.js";
import { llamaCppKvTypeKey } from "../../src/eval/llamacpp-kv-type.js";

let llamaPromise: Promise<Llama> | null = null;
const models = new Map<string, Promise<LlamaModel>>();
/** llama.cpp's KV-cache log lines (type, size, attn_rot_k/v), newest last: lets tests confirm what a context used. */
const kvCacheLog: string[] = [];

function llama(): Promise<Llama> {
  llamaPromise ??= getLlama({
    gpu: false,
    build: "never",
    maxThreads: 2,
    logLevel: LlamaLogLevel.info,
    logger(level, message) {
      if (/llama_kv_cache: (size|attn_rot|attention rotation)/.test(message)) kvCacheLog.push(message.trim());
      if (level === LlamaLogLevel.error || level === LlamaLogLevel.fatal) process.stderr.write(`llama.cpp: ${message}`);
    },
  });
  return llamaPromise;
}

export async function llamaModel(modelPath: string): Promise<LlamaModel> {
  let m = models.get(modelPath);
  if (!m) {
    m = llama().then((l) => l.loadModel({ modelPath, gpuLayers: 0 }));
    models.set(modelPath, m);
  }
  return m;
}

/** Dispose every loaded model and the llama instance (call once at the end of a test file). */
export async function closeLlama(): Promise<void> {
  for (const m of models.values()) await (await m).dispose();
  models.clear();
  if (llamaPromise) await (await llamaPromise).dispose();
  llamaPromise = null;
}

/** The KV-cache log lines llama.cpp printed so far (each context prints size and attn_rot_k / attn_rot_v lines). */
export async function llamaKvCacheLog(): Promise<string[]> {
  await new Promise((r) => setTimeout(r, 50)); // log lines arrive through an async callback
  return [...kvCacheLog];
}

/** Token ids of `text` as llama.cpp's tokenizer gives them with add_special: BOS first when the model adds BOS. */
export async function llamaTokenize(modelPath: string, text: string): Promise<number[]> {
  const model = await llamaModel(modelPath);
  const body = Array.from(model.tokenize(text));
  const bos = model.tokens.bos;
  return model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...body] : body;
}

export interface GreedyResult {
  /** nTokens generated token ids (the BOS prompt not included); an end-of-generation token is kept and generation goes on. */
  tokens: number[];
  /** Index in `tokens` of the first end-of-generation token, or null. */
  firstEogAt: number | null;
}

/** Greedy decoding (temperature 0, no penalties) from BOS alone, f16 cache (llama.cpp's default). */
export async function llamaGreedy(modelPath: string, nTokens: number): Promise<GreedyResult> {
  const model = await llamaModel(modelPath);
  const bos = model.tokens.bos;
  if (bos === null) throw new Error(`${modelPath} has no BOS token to start greedy decoding from`);
  const context = await model.createContext({ contextSize: nTokens + 2, sequences: 1 });
  try {
    const tokens: number[] = [];
    let firstEogAt: number | null = null;
    for await (const t of context.getSequence().evaluate([bos], { temperature: 0, yieldEogToken: true })) {
      if (firstEogAt === null && model.isEogToken(t)) firstEogAt = tokens.length;
      tokens.push(t);
      if (tokens.length >= nTokens) break;
    }
    return { tokens, firstEogAt };
  } finally {
    await context.dispose();
  }
}

export interface LlamaLogProbsOptions {
  /** K cache format (default f32). */
  typeK?: KvFormatName;
  /** V cache format (default f32). */
  typeV?: KvFormatName;
  /** Default: off for an f32/f32 cache (the fp32 reference), on otherwise (quantized V requires it). */
  flashAttention?: boolean;
  /** llama.cpp's Hadamard rotation of quantized K/V (default true; off sets LLAMA_ATTN_ROT_DISABLE=1 for this context). */
  rotation?: boolean;
  /** Context size (default: tokens + 1, padded up to 256 by node-llama-cpp). Must exceed the number of tokens. */
  contextSize?: number;
  /**
   * First position whose distribution is wanted (default 0). Rows before it are not computed and hold NaN:
   * pass scoredRange(ctx).first when only a chunk's second half is scored, to halve the oracle's work.
   */
  firstOutput?: number;
}

/**
 * Next-token log-probabilities after every token of `tokens`, evaluated in one batch from an empty cache:
 * a (tokens.length, nVocab) array; row r is log p(. | tokens[0..r]) (NaN for rows before options.firstOutput).
 * Computed in float64 from llama.cpp's float32 probabilities (renormalised), stored as float32.
 */
export async function llamaLogProbs(modelPath: string, tokens: readonly number[], options: LlamaLogProbsOptions = {}): Promise<Float32Array> {
  const model = await llamaModel(modelPath);
  const typeK = options.typeK ?? "f32";
  const typeV = options.typeV ?? "f32";
  const flashAttention = options.flashAttention ?? !(typeK === "f32" && typeV === "f32");
  const contextSize = options.contextSize ?? tokens.length + 1;
  if (contextSize <= tokens.length) {
    throw new RangeError(`contextSize ${contextSize} must exceed the ${tokens.length} tokens evaluated (llama.cpp crashed at equality)`);
  }
  if (!flashAttention && typeV !== "f32" && typeV !== "f16" && typeV !== "bf16") {
    throw new RangeError(`llama.cpp needs flash attention for a quantized V cache (${typeV}); pass flashAttention: true`);
  }
  const nVocab = vocabSize(model);
  const firstOutput = options.firstOutput ?? 0;
  if (!Number.isInteger(firstOutput) || firstOutput < 0 || firstOutput >= tokens.length) {
    throw new RangeError(`firstOutput ${firstOutput} must be a position 0..${tokens.length - 1}`);
  }

  const previous = process.env.LLAMA_ATTN_ROT_DISABLE;
  if (options.rotation === false) process.env.LLAMA_ATTN_ROT_DISABLE = "1";
  else delete process.env.LLAMA_ATTN_ROT_DISABLE;
  let context;
  try {
    context = await model.createContext({
      contextSize,
      batchSize: tokens.length,
      sequences: 1,
      flashAttention,
      experimentalKvCacheKeyType: llamaCppKvTypeKey(typeK),
      experimentalKvCacheValueType: llamaCppKvTypeKey(typeV),
    });
  } finally {
    if (previous === undefined) delete process.env.LLAMA_ATTN_ROT_DISABLE;
    else process.env.LLAMA_ATTN_ROT_DISABLE = previous;
  }
  try {
    const results = await context
      .getSequence()
      .controlledEvaluate(
        tokens.map((t, r): ControlledEvaluateInputItem => (r < firstOutput ? (t as Token) : [t as Token, { generateNext: { probabilities: true } }])),
      );
    const out = new Float32Array(tokens.length * nVocab).fill(NaN); // (nTokens, nVocab)
    const row = new Float64Array(nVocab); // (nVocab)
    for (let r = firstOutput; r < tokens.length; r++) {
      const probabilities = results[r]?.next.probabilities;
      if (!probabilities) throw new Error(`llama.cpp returned no probabilities for position ${r}`);
      if (probabilities.size !== nVocab) {
        throw new Error(`llama.cpp returned ${probabilities.size} probabilities at position ${r}, expected the whole vocabulary ${nVocab}`);
      }
      row.fill(-Infinity);
      let sum = 0;
      for (const [token, p] of probabilities) {
        row[token] = Math.log(p);
        sum += p;
      }
      const logSum = Math.log(sum);
      for (let i = 0; i < nVocab; i++) out[r * nVocab + i] = row[i] - logSum;
    }
    return out;
  } finally {
    await context.dispose();
  }
}

/** The vocabulary size: the length of the GGUF's tokenizer.ggml.tokens array. */
export async function llamaVocabSize(modelPath: string): Promise<number> {
  return vocabSize(await llamaModel(modelPath));
}

function vocabSize(model: LlamaModel): number {
  const tokens = model.fileInfo.metadata.tokenizer?.ggml?.tokens;
  if (!Array.isArray(tokens)) throw new Error("model metadata has no tokenizer.ggml.tokens array to size the vocabulary");
  return tokens.length;
}
