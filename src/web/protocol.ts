/**
 * Messages between a page (client.ts) and the engine worker (engine-worker.ts). The engine runs in a dedicated
 * worker because the kernels' thread pool blocks its caller (Atomics.wait), which a page's main thread may not do.
 */
import type { ChatMessage } from "../chat/template.js";
import type { SamplingOptions } from "../api.js";
import type { StreamStopReason } from "../model/stream.js";

/** Where the model's bytes come from: a URL (downloaded once into the Origin Private File System) or a File. */
export type ModelSource = { url: string } | { file: File };

export interface LoadSettings {
  /** Tokens the cache holds (default: the model's trained context, at most 4096 in a page). */
  contextSize?: number;
  /** A K/V config as on the command line: "F16", "K8V4", "q8_0/q4_0", "K4V4+w32" (default F16). */
  kv?: string;
  /** Instead of kv: the text of a per-layer K/V schedule (`--kv-schedule` JSON, as `kvsplit tune` writes it). */
  schedule?: string;
}

export interface GenerateSettings extends SamplingOptions {
  /** Tokens to generate at most (default 256). */
  maxTokens?: number;
  stop?: string[];
}

export type EngineRequest =
  | { type: "init"; id: number; threads: number; base: string }
  | { type: "load"; id: number; source: ModelSource; settings: LoadSettings }
  | { type: "complete"; id: number; prompt: string; settings: GenerateSettings }
  | { type: "chat"; id: number; message: string; system?: string; settings: GenerateSettings }
  | { type: "reset"; id: number }
  | { type: "stop" };

/** What a loaded model and its session look like to a page. */
export interface ModelInfo {
  name: string;
  architecture: string;
  layers: number;
  contextSize: number;
  trainedContext: number;
  /** The config as given ("K8V4") and each layer's formats. */
  kvConfig: string;
  kvLayers: Array<{ k: string; v: string }>;
  /** Bytes the cache holds per position (all of it over contextSize), and what an f16/f16 cache holds per position. */
  kvBytesPerToken: number;
  f16BytesPerToken: number;
  /** Bytes the whole cache holds (all contextSize positions). */
  kvBytes: number;
  threads: number;
  kernels: string;
  /** Whether the bytes came from the Origin Private File System (a URL loaded before). */
  fromCache: boolean;
  chatTemplate: string;
  /** Set when contextSize is past the model's trained context (quality drops there). */
  contextWarning?: string;
}

export interface GenerationSummary {
  text: string;
  tokens: number[];
  stopReason: StreamStopReason;
  promptTokens: number;
  cachedTokens: number;
  promptMs: number;
  genTokens: number;
  genMs: number;
  position: number;
}

export type EngineEvent =
  | { type: "ready"; id: number; threads: number; crossOriginIsolated: boolean; kernels: string }
  | { type: "progress"; id: number; phase: "download" | "read"; done: number; total: number }
  | { type: "loaded"; id: number; info: ModelInfo }
  | { type: "piece"; id: number; text: string; token: number; position: number }
  | { type: "done"; id: number; summary: GenerationSummary }
  | { type: "reset-done"; id: number }
  // loaded: for a failed load, the model still loaded (the one before, when the new source failed before it was let go:
  // a URL that cannot be fetched, a file that is not GGUF), or null when none is
  | { type: "error"; id: number; name: string; message: string; loaded?: ModelInfo | null };
