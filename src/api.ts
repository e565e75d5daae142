/**
 * The public shape of the library: what the CLI does, a program can do.
 * (Types only; implementations live in model/ and kv/. index.ts re-exports these.)
 */
import type { ExactFormatName, KvFormatName } from "./formats/types.js";

/** One K/V choice: keys and values each in their own format. */
export interface KvPair {
  k: KvFormatName;
  v: KvFormatName;
  /** This layer's exact recent window, when one layer of a per-layer list differs from SessionOptions.kvWindow. */
  window?: number;
  /** This layer's exact sinks, when one layer of a per-layer list differs from SessionOptions.kvSinks. */
  sinks?: number;
  /**
   * "channel": keys per channel in groups of 32 positions (KIVI), each channel with its own scale per group; needs an
   * exact window of at least 32 positions (kvWindow or window), which holds a group until it is complete.
   */
  kLayout?: "channel";
}

export interface SessionOptions {
  /** Tokens the cache holds at most (default: the model's trained context length). */
  contextSize?: number;
  /** K/V formats for every layer, or one pair per layer (length = number of layers). Default f16/f16. */
  kv?: KvPair | readonly KvPair[];
  /** Hadamard-rotate quantized K/V when head_dim is a multiple of 64, as llama.cpp does (default true). */
  rotation?: boolean;
  /**
   * Exact recent window: every query reads its last `kvWindow` positions from f16 rows, the earlier ones from the
   * packed K/V formats (default 0: none). Costs kvWindow × kvDim × 2 × 2 bytes per layer; needs head_dim a multiple
   * of 32.
   */
  kvWindow?: number;
  /** Exact sinks: every query reads positions [0, kvSinks) from f16 rows (default 0). Same costs and needs as kvWindow. */
  kvSinks?: number;
  /**
   * The format of the window's and sinks' rows: "f16" (default) or "q8_0", 8.5 bits per value instead of 16, so the
   * same memory holds almost twice the window (K8V8's quality there; needs f16 for keys per channel).
   */
  kvExactFormat?: ExactFormatName;
}

export interface SamplingOptions {
  /** 0 = greedy (default). */
  temperature?: number;
  topK?: number;
  topP?: number;
  minP?: number;
  seed?: number;
  /** Divide positive (multiply negative) logits of tokens among the last penaltyLastN by this (1 = off; llama.cpp's --repeat-penalty). */
  repeatPenalty?: number;
  /** Subtract this from the logit of every token among the last penaltyLastN (0 = off; OpenAI's presence_penalty). */
  presencePenalty?: number;
  /** Subtract this × its count among the last penaltyLastN from each token's logit (0 = off; OpenAI's frequency_penalty). */
  frequencyPenalty?: number;
  /** How many of the most recent tokens the penalties look at (default 64, llama.cpp's; 0 = off, -1 = all given). */
  penaltyLastN?: number;
}
