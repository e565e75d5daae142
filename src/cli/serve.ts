/**
 * `kvsplit serve`: the OpenAI-compatible HTTP server (src/serve/http.ts) on one model. Slots: --parallel N, or
 * --memory SIZE for as many slots as that much KV cache holds at the chosen K/V config (a smaller cache: more
 * sessions). Unlike llama-server, whose -c is shared by its slots, -c here is each slot's context.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { Option, type Command } from "commander";
import { exactOptions } from "../kv/shorthand.js";
import { parseByteSize } from "../eval/plan.js";
import { startServer } from "../serve/http.js";
import { InputFileError, UsageError } from "./errors.js";
import { addContextShiftOptions, addModelOption, addSessionOptions, type ContextShiftValues, checkModelPath, formatBytes, intArg, kvConfigFromOptions, log, sessionKv, type SessionOptionValues } from "./options.js";

interface ServeOptions extends SessionOptionValues, ContextShiftValues {
  model: string;
  host: string;
  port: number;
  ctxSize?: number;
  parallel?: number;
  memory?: string;
  apiKey?: string;
  chatTemplateFile?: string;
  alias?: string;
  slotSavePath?: string;
  queue: number;
}

export function registerServe(program: Command): void {
  const cmd = program.command("serve").description("OpenAI-compatible HTTP server (chat and text completions, streamed) with parallel slots");
  addModelOption(cmd);
  cmd
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--port <n>", "port to listen on (0: any free port)", intArg(0, 65535), 8080)
    .option("-c, --ctx-size <n>", "context of each slot in tokens (default: the model's trained context, at most 4096)", intArg(1))
    .addOption(new Option("--parallel <n>", "slots: requests served at once (default 1)").argParser(intArg(1, 4096)).conflicts("memory"))
    .addOption(new Option("--memory <size>", "KV cache budget for all slots, e.g. 2GiB: as many slots as fit").conflicts("parallel"))
    .option("--queue <n>", "requests that may wait for a slot; more get 503 with Retry-After", intArg(0, 1_000_000), 512)
    .option("--api-key <key>", "require 'Authorization: Bearer <key>' (not on /health)")
    .option("--chat-template-file <file>", "Jinja chat template to use instead of the model's own")
    .option("--alias <name>", "model id in /v1/models and responses (default: the file name)")
    .option("--slot-save-path <dir>", "folder for slot states: POST /slots/{id}?action=save|restore {\"filename\": ...}");
  addSessionOptions(cmd);
  addContextShiftOptions(cmd);
  cmd.action((opts: ServeOptions) => serveCommand(opts));
}

async function serveCommand(opts: ServeOptions): Promise<void> {
  const kv = kvConfigFromOptions(opts);
  const modelPath = checkModelPath(opts.model);
  let memoryBytes: number | undefined;
  if (opts.memory !== undefined) {
    try {
      memoryBytes = parseByteSize(opts.memory);
    } catch (e) {
      throw new UsageError(`--memory ${opts.memory}: ${(e as Error).message}`);
    }
  }
  let chatTemplate: { text: string; origin: string } | undefined;
  if (opts.chatTemplateFile !== undefined) {
    try {
      chatTemplate = { text: readFileSync(opts.chatTemplateFile, "utf8"), origin: opts.chatTemplateFile };
    } catch (e) {
      throw new InputFileError(opts.chatTemplateFile, `cannot read the chat template: ${(e as Error).message}`);
    }
  }
  if (opts.slotSavePath !== undefined && !(existsSync(opts.slotSavePath) && statSync(opts.slotSavePath).isDirectory())) {
    throw new InputFileError(opts.slotSavePath, "--slot-save-path: not an existing folder");
  }
  const pairs = sessionKv(kv, modelPath);
  const { server, url } = await startServer({
    modelPath,
    host: opts.host,
    port: opts.port,
    threads: opts.threads,
    batchSize: opts.batchSize,
    contextSize: opts.ctxSize,
    kv: pairs,
    kvName: kv.name,
    rotation: opts.kvRotation,
    ...exactOptions(kv),
    parallel: memoryBytes !== undefined ? { memoryBytes } : (opts.parallel ?? 1),
    apiKey: opts.apiKey,
    chatTemplate,
    alias: opts.alias,
    slotSavePath: opts.slotSavePath,
    queueLimit: opts.queue,
    contextShift: opts.contextShift ? { keep: opts.keep } : undefined,
  });
  const pool = server.pool!;
  log(
    `serve: ${url} (OpenAI API at ${url}/v1); ${pool.slots.length} slot${pool.slots.length === 1 ? "" : "s"} of ${pool.contextSize} tokens, ` +
      `kv ${kv.name} (k=${kv.k} v=${kv.v}): ${formatBytes(pool.slotKvBytes)} per slot, ${formatBytes(pool.slotKvBytes * pool.slots.length)} in all; ` +
      `chat template: ${server.chatTemplateSource}`,
  );
  await new Promise<void>((resolve) => {
    const stop = () => {
      log("serve: stopping (requests in flight get up to 3 s to finish)");
      void server.shutdown(3000).then(resolve);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
