/** Defaults shared by model loading and sessions. */
import type { KvPair } from "../api.js";

/** K/V formats of a session created without `kv`: llama.cpp's default cache types. */
export const DEFAULT_KV: KvPair = { k: "f16", v: "f16" };

/** Tokens run through the network together (llama.cpp's micro-batch): each weight row is read once per batch. */
export const MAX_BATCH = 64;
