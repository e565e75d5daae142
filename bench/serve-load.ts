/**
 * The server's numbers for BENCHMARKS.md (bench/results/serve-load.json; `npm run bench:md -- --sections ""` composes):
 *   1. aggregate generation speed of 4 parallel streams against one stream, kvsplit serve (continuous batching) and
 *      llama.cpp (node-llama-cpp, one context with 4 sequences), alternating rep by rep, each engine's one and four
 *      streams back to back (the ratio of the medians and the median of each rep's own ratio);
 *   2. a load of R requests from C concurrent clients on 4 slots: statuses, outputs at temperature 0 against the same
 *      request run alone, the server's RSS before and after;
 *   3. slots per KV budget for each K/V config (what `serve --memory` gives).
 *
 *   node dist/bench/serve-load.js [--model FILE] [-t 2] [--reps 3] [--tokens 64] [--requests 200] [--clients 16]
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync, renameSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { loadModel } from "../src/model/model.js";
import { parseKvConfig, kvPairsOf } from "../src/kv/shorthand.js";
import { importNodeLlamaCpp } from "../src/eval/bench-llamacpp.js";
import { gitDescription } from "./git-description.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLI = path.join(REPO_ROOT, "dist", "src", "cli", "main.js");
const RESULTS = path.join(REPO_ROOT, "bench", "results", "serve-load.json");
const PROMPTS = Array.from({ length: 20 }, (_, i) => `Once upon a time, in story number ${i + 1}, a little`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => process.stderr.write(s + "\n");

interface Server {
  url: string;
  child: ChildProcess;
  rssBytes(): number;
  stop(): Promise<void>;
}

async function startServer(model: string, args: string[]): Promise<Server> {
  const child = spawn(process.execPath, [CLI, "serve", "-m", model, "--port", "0", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (d: Buffer) => {
      stderr += d.toString();
      const m = /serve: (http:\/\/\S+)/.exec(stderr);
      if (m) resolve(m[1]!);
    });
    child.on("exit", (code) => reject(new Error(`serve exited (${code}): ${stderr}`)));
  });
  return {
    url,
    child,
    rssBytes: () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0) * 1024,
    stop: () =>
      new Promise((resolve) => {
        child.once("exit", () => resolve());
        child.kill("SIGTERM");
      }),
  };
}

interface Completion {
  status: number;
  text: string;
  tokens: number;
}

async function complete(url: string, prompt: string, maxTokens: number): Promise<Completion> {
  const r = await fetch(`${url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0 }) });
  if (r.status !== 200) return { status: r.status, text: "", tokens: 0 };
  const j = (await r.json()) as { choices: { text: string }[]; usage: { completion_tokens: number } };
  return { status: 200, text: j.choices[0]!.text, tokens: j.usage.completion_tokens };
}

/** Tokens per second of `streams` requests at once (Σ generated tokens / wall time). */
async function kvsplitAggregate(url: string, streams: number, tokens: number): Promise<number> {
  const start = performance.now();
  const done = await Promise.all(PROMPTS.slice(0, streams).map((p) => complete(url, p, tokens)));
  return (done.reduce((n, c) => n + c.tokens, 0) * 1000) / (performance.now() - start);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: "string", default: path.join(REPO_ROOT, ".cache", "tinyllama-1.1b-q8_0.gguf") },
      threads: { type: "string", short: "t", default: "2" },
      reps: { type: "string", default: "3" },
      tokens: { type: "string", default: "64" },
      requests: { type: "string", default: "200" },
      clients: { type: "string", default: "16" },
    },
  });
  const model = values.model;
  if (!existsSync(model)) throw new Error(`${model} not found: make it with node dist/src/cli/main.js synth --preset tinyllama-1.1b --type q8_0 -o ${model}`);
  const threads = Number(values.threads);
  const reps = Number(values.reps);
  const tokens = Number(values.tokens);
  const started = new Date().toISOString();
  const commit = gitDescription(REPO_ROOT);

  // 1. aggregate speed: kvsplit (4 slots) and llama.cpp (4 sequences), one stream and four, rep by rep
  const ctx = 512;
  const kv = await startServer(model, ["--parallel", "4", "-c", String(ctx), "-t", String(threads), "--kv", "F16"]);
  const { getLlama, LlamaLogLevel } = await importNodeLlamaCpp();
  const llama = await getLlama({ gpu: false, build: "never", maxThreads: threads, logLevel: LlamaLogLevel.error });
  const lmodel = await llama.loadModel({ modelPath: model, gpuLayers: 0 });
  const lctx = await lmodel.createContext({ contextSize: ctx * 4, sequences: 4, batchSize: 512, threads: { ideal: threads, min: threads }, flashAttention: true });
  const seqs = Array.from({ length: 4 }, () => lctx.getSequence());
  const llamaAggregate = async (streams: number): Promise<number> => {
    for (const s of seqs) await s.clearHistory();
    const start = performance.now();
    const counts = await Promise.all(
      seqs.slice(0, streams).map(async (s, i) => {
        let n = 0;
        for await (const _ of s.evaluate(lmodel.tokenize(PROMPTS[i]!), { temperature: 0, yieldEogToken: true })) if (++n >= tokens) break;
        return n;
      }),
    );
    return (counts.reduce((a, b) => a + b, 0) * 1000) / (performance.now() - start);
  };
  // warm up both, four streams too: every run of the server then finds its prompt in its slot (prefix reuse), the
  // first as the others
  await kvsplitAggregate(kv.url, 4, 4);
  await llamaAggregate(4);
  const runs = { kvsplit1: [] as number[], kvsplit4: [] as number[], llama1: [] as number[], llama4: [] as number[] };
  for (let r = 0; r < reps; r++) {
    // each engine's one and four streams back to back, so a slow spell of the host falls on both of a pair
    runs.kvsplit1.push(await kvsplitAggregate(kv.url, 1, tokens));
    runs.kvsplit4.push(await kvsplitAggregate(kv.url, 4, tokens));
    runs.llama1.push(await llamaAggregate(1));
    runs.llama4.push(await llamaAggregate(4));
    log(`rep ${r + 1}/${reps}: kvsplit 1 stream ${runs.kvsplit1.at(-1)!.toFixed(1)} t/s, 4 streams ${runs.kvsplit4.at(-1)!.toFixed(1)}; llama.cpp ${runs.llama1.at(-1)!.toFixed(1)}, ${runs.llama4.at(-1)!.toFixed(1)}`);
  }
  const pairRatios = (four: number[], one: number[]) => four.map((x, i) => x / one[i]!);
  await lctx.dispose();
  await lmodel.dispose();
  await llama.dispose();
  await kv.stop();

  // 2. load: R requests from C clients on 4 slots, against each prompt run alone first
  const load = await startServer(model, ["--parallel", "4", "-c", String(ctx), "-t", String(threads), "--kv", "K8V4", "--queue", "512"]);
  const alone = new Map<string, string>();
  for (const p of PROMPTS) alone.set(p, (await complete(load.url, p, 16)).text);
  const rssBefore = load.rssBytes();
  const total = Number(values.requests);
  const statuses = new Map<number, number>();
  let identical = 0;
  let next = 0;
  const loadStart = performance.now();
  await Promise.all(
    Array.from({ length: Number(values.clients) }, async () => {
      while (next < total) {
        const p = PROMPTS[next++ % PROMPTS.length]!;
        const c = await complete(load.url, p, 16);
        statuses.set(c.status, (statuses.get(c.status) ?? 0) + 1);
        if (c.status === 200 && c.text === alone.get(p)) identical++;
      }
    }),
  );
  const loadSeconds = (performance.now() - loadStart) / 1000;
  const rssAfter = load.rssBytes();
  await load.stop();
  log(`load: ${total} requests in ${loadSeconds.toFixed(1)} s; statuses ${JSON.stringify(Object.fromEntries(statuses))}; identical ${identical}; RSS ${(rssBefore / 2 ** 20).toFixed(1)} -> ${(rssAfter / 2 ** 20).toFixed(1)} MiB`);

  // 3. slots per KV budget at a 4096-token context (what serve --memory gives)
  const m = loadModel(model, { threads: 1 });
  const budget = 2 ** 30;
  const slots = ["F16", "K8V8", "K8V4", "K4V4", "K3V3"].map((name) => {
    const s = m.createSession({ contextSize: 4096, kv: kvPairsOf(parseKvConfig(name)) });
    const bytes = s.kvBytes;
    s.dispose();
    return { config: name, slot_bytes: bytes, slots: Math.floor(budget / bytes) };
  });
  m.dispose();

  const result = {
    started, commit, model: path.relative(REPO_ROOT, model), threads, reps, tokens, cpu: os.cpus()[0]?.model ?? "unknown", cores: os.availableParallelism(),
    aggregate: {
      runs, kvsplit1: median(runs.kvsplit1), kvsplit4: median(runs.kvsplit4), llama1: median(runs.llama1), llama4: median(runs.llama4),
      // medians of each run's own 4 / 1 ratio (its two measurements back to back)
      kvsplitPairRatio: median(pairRatios(runs.kvsplit4, runs.kvsplit1)), llamaPairRatio: median(pairRatios(runs.llama4, runs.llama1)),
    },
    load: { requests: total, clients: Number(values.clients), slots: 4, seconds: loadSeconds, statuses: Object.fromEntries(statuses), identical, rss_before: rssBefore, rss_after: rssAfter },
    slots_per_gib: { context: 4096, budget_bytes: budget, rows: slots },
  };
  const tmp = `${RESULTS}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(result, null, 1) + "\n");
  renameSync(tmp, RESULTS);
  log(`wrote ${path.relative(REPO_ROOT, RESULTS)}; compose BENCHMARKS.md with npm run bench:md -- --sections ""`);
}

await main().catch((err: unknown) => {
  console.error(`serve-load: error: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
