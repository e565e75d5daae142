/**
 * kvsplit: a TypeScript LLM inference engine whose KV cache stores keys and values in independently chosen formats.
 *
 *   const model = loadModel("model.gguf");
 *   const session = model.createSession({ contextSize: 2048, kv: { k: "q8_0", v: "q4_0" } });
 *   const logits = session.eval(model.tokenizer.encode("Once upon a time"));
 *   console.log(session.kvBytes);
 *   session.dispose();
 */
export type { KvPair, SessionOptions, SamplingOptions } from "./api.js";
export { loadModel, Model, type LoadOptions } from "./model/model.js";
export { Session, ContextFullError, TruncateError } from "./model/session.js";
export { StateFileError } from "./model/session-state.js";
export { evalBatch, type BatchStep } from "./model/batch.js";
export { DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE } from "./model/defaults.js";
export type { ModelConfig } from "./model/config.js";
export { SUPPORTED_ARCHITECTURES } from "./model/config.js";
export { ModelError } from "./model/errors.js";
export { GgufError } from "./gguf/errors.js";
export { FORMATS, getKvFormat, getFormat, rowBytes, UnknownFormatError } from "./formats/table.js";
export { KV_FORMAT_NAMES, type KvFormatName, type FormatName, type BlockFormat } from "./formats/types.js";
export type { Tokenizer } from "./tokenizer/index.js";
export { TokenTextDecoder, TokenizerError } from "./tokenizer/index.js";
export { generate, ContextOverflowError, type GenerateResult } from "./model/generate.js";
export { generateStream, type GenerationStream, type StreamOptions, type StreamPiece, type StreamResult, type StreamStopReason } from "./model/stream.js";
export { ChatTemplate, ChatTemplateError, CHATML_TEMPLATE, type ChatMessage, type RenderOptions } from "./chat/template.js";
export { chatTemplateOf, chatPromptTokens, type ModelChatTemplate } from "./chat/model-template.js";
export { Conversation, type ReplyOptions, type ReplyResult } from "./chat/conversation.js";
export { Sampler, SamplerOptionError } from "./model/sampler.js";
export { parseKvConfig, parseKvConfigList, kvConfigName, kvPairsOf, configOfSchedule, KvConfigError, type KvConfig } from "./kv/shorthand.js";
export { parseKvSchedule, readKvSchedule, kvScheduleJson, checkScheduleLayers, KvScheduleError, type KvSchedule } from "./kv/schedule.js";
export { kvBytesPerToken, kvBitsPerValue } from "./kv/cache.js";
export { resolveModelPath, parseModelSpec, ModelSpecError, type ResolveOptions } from "./download/resolve.js";
export { DownloadError } from "./download/download.js";
export { kernelVariant, type KernelVariant } from "./runtime/wasm.js";
export { planMemory, checkMemoryPlan, MemoryPlanError, type MemoryPlan } from "./model/memory.js";
export { startServer, KvsplitServer, type ServerOptions } from "./serve/http.js";
