/** Defaults shared by model loading and sessions. */
import type { KvPair } from "../api.js";

/** K/V formats of a session created without `kv`: llama.cpp's default cache types. */
export const DEFAULT_KV: KvPair = { k: "f16", v: "f16" };

/**
 * Tokens run through the network together unless LoadOptions.batchSize says otherwise (llama.cpp's micro-batch,
 * n_ubatch): each weight matrix is read from memory, and its rows widened, once per batch. At 64 the products are
 * already compute-bound: a 512-token prompt on the TinyLlama shape (q8_0, 2 threads; three rounds of 3 runs, batch
 * sizes alternating) took 2–4% less CPU time in batches of 128 (median wall speed per round: 54.7 / 69.2 / 66.6 t/s
 * at 64, 54.7 / 71.7 / 49.6 at 128 on a noisy host), for twice the scratch.
 */
export const DEFAULT_BATCH_SIZE = 64;

/** The largest LoadOptions.batchSize (llama.cpp's default n_ubatch is 512; a model's scratch grows with the batch). */
export const MAX_BATCH_SIZE = 4096;
