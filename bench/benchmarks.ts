/**
 * Writes BENCHMARKS.md: kvsplit against llama.cpp (node-llama-cpp), side by side in one run, in three sections, each
 * the equivalent of one `kvsplit bench ... --vs llama.cpp` command with its targets (issue 9's; issue 3's where they
 * still apply):
 *   q8_0   synthetic TinyLlama-1.1B shape, q8_0 weights: F16, K8V8, K8V4, K4V8, K4V4 at depths 512 and 2048, 5 runs
 *   q4_K   the same shape with q4_K weights (what Q4_K_M files mostly hold): F16, K8V4, K4V4 at 512 and 2048, 5 runs
 *   8b     a Llama-3-8B shape with q4_K weights at a 32K context: F16 and K8V4 at 512 and 4096, 3 runs
 *
 *   node dist/bench/benchmarks.js [--sections q8_0,q4_K,8b | ""] [--reps N] [-t N] [--model-q8_0 FILE] [--model-q4_K FILE]
 *                                 [--model-8b FILE] [--out FILE]
 *
 * Each measured section is saved to bench/results/<section>.json as soon as it finishes (with its command, date,
 * commit, machine and load), and BENCHMARKS.md is composed from every saved section after each one: a section can be
 * re-measured alone, an interrupted run keeps what finished. Models are synthesized once into .cache/ when absent
 * (`kvsplit synth --preset tinyllama-1.1b|llama-8b --type q8_0|q4_K`). Progress goes to stderr.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { SYNTH_PRESETS, synthToFile, type SynthPresetName, type SynthWeightType } from "../src/gguf/synth.js";
import type { ModelConfig } from "../src/model/config.js";
import { parseKvConfigList } from "../src/kv/shorthand.js";
import { benchRatio, benchTable, inspectBenchModel, runBench, type BenchReport } from "../src/eval/bench-runner.js";
import { NODE_LLAMA_CPP_VERSION } from "../src/eval/bench-llamacpp.js";
import { BENCH_BATCH_SIZE, type BenchEngine } from "../src/eval/bench.js";
import type { ConformanceResult } from "./conformance-8b.js";
import { gitDescription } from "./git-description.js";
import type { RunTimes, WebBenchResult } from "./web-bench.js";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
const RESULTS_DIR = path.join(REPO_ROOT, "bench", "results");

/** A target: a ratio kvsplit / llama.cpp for some configs at a depth, or the peak RSS bound. */
type Target =
  | { text: string; measure: "pp_tps" | "tg_tps"; depth: number | "any"; configs: "all" | readonly string[]; minRatio: number }
  | { text: string; measure: "rss"; headroomBytes: number };

interface Section {
  id: string;
  title: string;
  intro: string;
  preset: SynthPresetName;
  type: SynthWeightType;
  configs: string;
  depths: number[];
  promptTokens: number;
  reps: number;
  /** Context both engines allocate (default: just enough for the depths). */
  contextSize?: number;
  targets: Target[];
}

const QUANTIZED = ["K8V8", "K8V4", "K4V8", "K4V4"];
const SECTIONS: readonly Section[] = [
  {
    id: "q8_0",
    title: "TinyLlama-1.1B shape, q8_0 weights",
    intro: "The shape of issue 3's targets; issue 9 raises the prompt target to 0.7×.",
    preset: "tinyllama-1.1b", type: "q8_0", configs: "F16,K8V8,K8V4,K4V8,K4V4", depths: [512, 2048], promptTokens: 512, reps: 5,
    targets: [
      { text: "prompt processing of 512 tokens ≥ 0.7× llama.cpp, every config", measure: "pp_tps", depth: "any", configs: "all", minRatio: 0.7 },
      { text: "generation after 512 tokens ≥ 0.85× llama.cpp, every config", measure: "tg_tps", depth: 512, configs: "all", minRatio: 0.85 },
      { text: "generation after 2048 tokens with quantized caches ≥ 1.0× llama.cpp", measure: "tg_tps", depth: 2048, configs: QUANTIZED, minRatio: 1.0 },
    ],
  },
  {
    id: "q4_K",
    title: "TinyLlama-1.1B shape, q4_K weights",
    intro: "Most downloaded models are K-quants (Q4_K_M: q4_K with some q6_K); every matrix here is q4_K.",
    preset: "tinyllama-1.1b", type: "q4_K", configs: "F16,K8V4,K4V4", depths: [512, 2048], promptTokens: 512, reps: 5,
    targets: [
      { text: "generation after 512 tokens ≥ 0.95× llama.cpp, F16 and K8V4", measure: "tg_tps", depth: 512, configs: ["F16", "K8V4"], minRatio: 0.95 },
      { text: "prompt processing of 512 tokens ≥ 0.6× llama.cpp, every config", measure: "pp_tps", depth: "any", configs: "all", minRatio: 0.6 },
    ],
  },
  {
    id: "8b",
    title: "Llama-3-8B shape, q4_K weights, 32K context",
    intro: "Weights (3.8 GiB) and a 32K-token cache do not fit one 4 GiB WebAssembly memory: kvsplit spreads them over several.",
    preset: "llama-8b", type: "q4_K", configs: "F16,K8V4", depths: [512, 4096], promptTokens: 512, reps: 3, contextSize: 32768,
    targets: [
      { text: "generation after 512 tokens ≥ 0.9× llama.cpp, every config", measure: "tg_tps", depth: 512, configs: "all", minRatio: 0.9 },
      { text: "generation after 4096 tokens with K8V4 ≥ 1.1× llama.cpp", measure: "tg_tps", depth: 4096, configs: ["K8V4"], minRatio: 1.1 },
      { text: "kvsplit's peak RSS ≤ model file + KV cache + 512 MiB", measure: "rss", headroomBytes: 512 * 1024 ** 2 },
    ],
  },
];

/** What bench/results/<section>.json holds. */
interface SavedSection {
  id: string;
  command: string;
  started: string;
  commit: string;
  machine: string[];
  modelBytes: number;
  /** The model's shape, read when measured (older files lack it: see modelShape). */
  modelConfig?: ModelConfig;
  report: BenchReport;
}

function log(line: string): void {
  process.stderr.write(line + "\n");
}

function options() {
  const { values } = parseArgs({
    options: {
      sections: { type: "string", default: SECTIONS.map((s) => s.id).join(",") },
      reps: { type: "string" },
      threads: { type: "string", short: "t", default: "2" },
      "model-q8_0": { type: "string" },
      "model-q4_K": { type: "string" },
      "model-8b": { type: "string" },
      out: { type: "string", default: path.join(REPO_ROOT, "BENCHMARKS.md") },
    },
  });
  const int = (name: string, text: string, min: number): number => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} ${text}: expected an integer >= ${min}`);
    return n;
  };
  // --sections "" (or none): measure nothing, compose BENCHMARKS.md from the saved sections
  const ids = values.sections.split(",").map((s) => s.trim()).filter((s) => s !== "");
  for (const id of ids) {
    if (!SECTIONS.some((s) => s.id === id)) throw new Error(`--sections: unknown section '${id}'; sections: ${SECTIONS.map((s) => s.id).join(", ")}`);
  }
  const models: Record<string, string | undefined> = { q8_0: values["model-q8_0"], q4_K: values["model-q4_K"], "8b": values["model-8b"] };
  return {
    sections: SECTIONS.filter((s) => ids.includes(s.id)),
    reps: values.reps === undefined ? undefined : int("reps", values.reps, 1),
    threads: int("threads", values.threads, 1),
    models,
    out: path.resolve(values.out),
  };
}

/** The section's model: `given`, or the synthetic one in .cache/ (synthesized when absent). */
function sectionModel(section: Section, given: string | undefined): string {
  if (given) return given;
  const file = path.join(REPO_ROOT, ".cache", `${section.preset}-${section.type}.gguf`);
  if (!existsSync(file)) {
    mkdirSync(path.dirname(file), { recursive: true });
    log(`synthesizing ${file} (${section.preset}, ${section.type} weights, seed 1)...`);
    const started = performance.now();
    synthToFile({ preset: section.preset, type: section.type, seed: 1 }, file);
    log(`synthesized in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return file;
}

function machineLines(loadBefore: readonly number[]): string[] {
  const cpus = os.cpus();
  const warning = busyWarning(loadBefore);
  return [
    `- CPU: ${cpus[0]?.model.trim() ?? "unknown"} (${os.availableParallelism()} logical cores available)`,
    `- Memory: ${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB; ${os.type()} ${os.release()} ${os.arch()}`,
    `- Node ${process.version}; node-llama-cpp ${installedNodeLlamaCppVersion()} (prebuilt CPU binary)`,
    `- Load average (1, 5, 15 min) before the run: ${loadText(loadBefore)}; after: ${loadText(os.loadavg())}`,
    ...(warning ? [`- **${warning}**`] : []),
  ];
}

function loadText(load: readonly number[]): string {
  return load.map((l) => l.toFixed(2)).join(", ");
}

/**
 * A warning when other work was using the CPUs as the run started: both engines then lose time slices, and
 * llama.cpp's generation (hundreds of thread barriers per token) loses far more than its prompt batches.
 */
function busyWarning(load: readonly number[]): string | null {
  const busy = load[0]!;
  return busy > 0.5
    ? `The machine was busy before the run (1-min load ${busy.toFixed(2)} on ${os.availableParallelism()} cores): ratios are unreliable; rerun on an idle machine.`
    : null;
}

function installedNodeLlamaCppVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, "node_modules", "node-llama-cpp", "package.json"), "utf8")) as { version?: string };
    return pkg.version ?? NODE_LLAMA_CPP_VERSION;
  } catch {
    return `${NODE_LLAMA_CPP_VERSION} (expected)`;
  }
}

/** One line per target: each config's ratio (or RSS) and whether the whole target holds. */
function targetLines(section: Section, saved: SavedSection): string[] {
  const report = saved.report;
  return section.targets.map((target) => {
    if (target.measure === "rss") {
      const rows = report.rows.filter((r) => r.engine === "kvsplit");
      const checks = [...new Map(rows.map((r) => [r.config, r])).values()].map((r) => {
        const bound = saved.modelBytes + r.kv_bytes + target.headroomBytes;
        return [r.config, r.rss_peak_bytes, bound] as const;
      });
      const holds = checks.every(([, rss, bound]) => rss <= bound);
      const detail = checks.map(([c, rss, bound]) => `${c} ${gib(rss)} of ${gib(bound)} ${rss <= bound ? "✓" : "✗"}`).join(", ");
      return `- ${target.text}: **${holds ? "holds" : "does not hold"}** (${detail})`;
    }
    if (target.measure === "pp_tps" && report.prompt_tokens !== 512) {
      return `- ${target.text}: **not measured** (this run's prompt batch was ${report.prompt_tokens} tokens)`;
    }
    const depth = target.depth === "any" ? report.depths[0] : target.depth;
    const inReport = [...new Set(report.rows.map((r) => r.config))];
    const wanted = target.configs === "all" ? inReport : target.configs;
    const ratios = depth === undefined || !report.depths.includes(depth) ? [] : wanted.map((c) => [c, benchRatio(report, c, depth, target.measure)] as const);
    const measured = ratios.filter((r): r is readonly [string, number] => r[1] !== null);
    if (measured.length === 0) return `- ${target.text}: **not measured** in this run`;
    const holds = measured.every(([, r]) => r >= target.minRatio);
    const detail = measured.map(([c, r]) => `${c} ${r.toFixed(2)}× ${r >= target.minRatio ? "✓" : "✗"}`).join(", ");
    const partial = measured.length < wanted.length ? " (some configs not measured)" : "";
    return `- ${target.text}: **${holds ? "holds" : "does not hold"}**${partial} (${detail}; medians of ${report.reps} runs each)`;
  });
}

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
}

/** A path as written in the report: relative to the repository when inside it. */
function shownPath(file: string): string {
  const rel = path.relative(REPO_ROOT, path.resolve(file));
  return rel.startsWith("..") || path.isAbsolute(rel) ? file : rel;
}

/**
 * The shape of a saved section's model: saved with it, else read from the file when it is still here, else the synth
 * preset's (the sections' default models), so BENCHMARKS.md can be composed on a machine without the models.
 */
function modelShape(section: Section, saved: SavedSection): Pick<ModelConfig, "nLayers" | "dim" | "nHeads" | "nKvHeads" | "headDim" | "ffnDim" | "nVocab"> {
  if (saved.modelConfig) return saved.modelConfig;
  if (existsSync(saved.report.model)) return inspectBenchModel(saved.report.model);
  const p = SYNTH_PRESETS[section.preset];
  return { nLayers: p.nLayers, dim: p.dim, nHeads: p.nHeads, nKvHeads: p.nKvHeads, headDim: p.dim / p.nHeads, ffnDim: p.ffnDim, nVocab: p.vocabSize };
}

function modelLine(section: Section, saved: SavedSection): string {
  const c = modelShape(section, saved);
  return (
    `Model: \`${shownPath(saved.report.model)}\` (random weights from \`kvsplit synth --preset ${section.preset} --type ${section.type}\`, ` +
    `${gib(saved.modelBytes)}): ${c.nLayers} layers, dim ${c.dim}, ${c.nHeads} heads, ${c.nKvHeads} KV heads, head_dim ${c.headDim}, ` +
    `FFN ${c.ffnDim}, vocabulary ${c.nVocab}.`
  );
}

function everyRun(report: BenchReport): string[] {
  return [
    "| engine | config | depth | pp t/s runs | tg t/s runs |",
    "|---|---|---|---|---|",
    ...report.rows.map(
      (r) => `| ${r.engine} | ${r.config} | ${r.depth} | ${r.pp_tps_runs.map((x) => x.toFixed(2)).join(", ")} | ${r.tg_tps_runs.map((x) => x.toFixed(2)).join(", ")} |`,
    ),
  ];
}

function sectionMarkdown(section: Section, saved: SavedSection | null): string[] {
  const heading = `## ${section.title}`;
  if (!saved) return [heading, `Not measured yet: \`npm run bench:md -- --sections ${section.id}\`.`, ""];
  const minutes = (saved.report.seconds / 60).toFixed(1);
  return [
    heading,
    section.intro,
    "",
    `Measured ${saved.started} from commit ${saved.commit}; ${minutes} min.`,
    ...saved.machine,
    "```",
    saved.command,
    "```",
    modelLine(section, saved),
    "",
    benchTable(saved.report),
    "",
    "Targets:",
    ...targetLines(section, saved),
    "",
    "<details><summary>Every run</summary>",
    "",
    ...everyRun(saved.report),
    "",
    "</details>",
    "",
  ];
}

/** The 8B conformance check (bench/conformance-8b.ts), when it has been run. */
function conformanceMarkdown(): string[] {
  const file = path.join(RESULTS_DIR, "conformance-8b.json");
  const heading = "## Conformance on the Llama-3-8B shape";
  if (!existsSync(file)) return [heading, "Not measured yet: `node dist/bench/conformance-8b.js`.", ""];
  const r = JSON.parse(readFileSync(file, "utf8")) as ConformanceResult;
  const a = r.kvsplit_vs_llamacpp_f32;
  const b = r.llamacpp_f16_vs_f32;
  return [
    heading,
    `Measured ${r.started} by \`node dist/bench/conformance-8b.js\` on \`${r.model}\`: next-token distributions over ${r.positions} positions of`,
    "the evaluation text. A random 32-layer model is chaotic, so absolute KL divergences are large; the bound is llama.cpp's own",
    "difference between its f16 cache and its f32 cache.",
    "",
    "| comparison | mean KLD | same top token |",
    "|---|---|---|",
    `| kvsplit f32 cache (${r.kvsplit_shards} WebAssembly memories) vs llama.cpp f32 cache (flash attention off) | ${a.kld_mean.toExponential(3)} | ${(100 * a.top1_agree).toFixed(1)}% |`,
    `| llama.cpp f16 cache (flash attention on) vs llama.cpp f32 cache | ${b.kld_mean.toExponential(3)} | ${(100 * b.top1_agree).toFixed(1)}% |`,
    "",
    `Target (kvsplit's KLD ≤ llama.cpp's f16-vs-f32 KLD): **${a.kld_mean <= b.kld_mean ? "holds" : "does not hold"}**.`,
    "",
  ];
}

interface ServeLoadResult {
  started: string;
  commit: string;
  model: string;
  threads: number;
  reps: number;
  tokens: number;
  aggregate: { runs: Record<string, number[]>; kvsplit1: number; kvsplit4: number; llama1: number; llama4: number; kvsplitPairRatio?: number; llamaPairRatio?: number };
  load: { requests: number; clients: number; slots: number; seconds: number; statuses: Record<string, number>; identical: number; rss_before: number; rss_after: number };
  slots_per_gib: { context: number; budget_bytes: number; rows: { config: string; slot_bytes: number; slots: number }[] };
}

/** The server's section (bench/serve-load.ts), when it has been run. */
function serveMarkdown(): string[] {
  const file = path.join(RESULTS_DIR, "serve-load.json");
  const heading = "## Server: parallel streams, load, slots per memory";
  if (!existsSync(file)) return [heading, "Not measured yet: `node dist/bench/serve-load.js`.", ""];
  const r = JSON.parse(readFileSync(file, "utf8")) as ServeLoadResult;
  const a = r.aggregate;
  const mib = (b: number) => (b / 2 ** 20).toFixed(1);
  const holds = (ok: boolean) => (ok ? "**holds**" : "**does not hold**");
  const answered = Object.entries(r.load.statuses).every(([status]) => status === "200" || status === "503");
  const rssGrowth = r.load.rss_after - r.load.rss_before;
  const f16 = r.slots_per_gib.rows.find((x) => x.config === "F16")!;
  const k8v4 = r.slots_per_gib.rows.find((x) => x.config === "K8V4")!;
  const paired = a.kvsplitPairRatio !== undefined && a.llamaPairRatio !== undefined; // results from before the runs were paired have neither
  return [
    heading,
    `Measured ${r.started} by \`node dist/bench/serve-load.js\` from commit ${r.commit} on \`${r.model}\`, ${r.threads} threads. kvsplit: \`kvsplit serve\``,
    "in its own process (continuous batching over its slots), requests over HTTP; llama.cpp: node-llama-cpp, one context with 4",
    `sequences, each generating in parallel. ${r.tokens} tokens per stream, greedy; aggregate = generated tokens of all streams / wall time;`,
    `medians of ${r.reps} runs, engines alternating${paired ? ", each engine's one and four streams back to back; 4 / 1: the ratio of the medians, and the median of each run's own ratio" : ""}.`,
    "",
    `| engine | 1 stream t/s | 4 streams aggregate t/s | 4 / 1 |${paired ? " 4 / 1, median of the runs' ratios |" : ""}`,
    `|---|---|---|---|${paired ? "---|" : ""}`,
    `| kvsplit (4 slots) | ${a.kvsplit1.toFixed(1)} | ${a.kvsplit4.toFixed(1)} | ${(a.kvsplit4 / a.kvsplit1).toFixed(2)}× |${paired ? ` ${a.kvsplitPairRatio!.toFixed(2)}× |` : ""}`,
    `| llama.cpp (4 sequences) | ${a.llama1.toFixed(1)} | ${a.llama4.toFixed(1)} | ${(a.llama4 / a.llama1).toFixed(2)}× |${paired ? ` ${a.llamaPairRatio!.toFixed(2)}× |` : ""}`,
    "",
    `Load: ${r.load.requests} requests (16 tokens each) from ${r.load.clients} concurrent clients on ${r.load.slots} slots (K8V4) in ${r.load.seconds.toFixed(1)} s: ` +
      `statuses ${Object.entries(r.load.statuses).map(([k, v]) => `${k}: ${v}`).join(", ")}; ${r.load.identical} of ${r.load.requests} outputs identical to the same request run alone; ` +
      `server RSS ${mib(r.load.rss_before)} MiB before, ${mib(r.load.rss_after)} MiB after.`,
    "",
    `Slots per ${(r.slots_per_gib.budget_bytes / 2 ** 30).toFixed(0)} GiB of KV cache at a ${r.slots_per_gib.context}-token context (\`serve --memory 1GiB -c ${r.slots_per_gib.context}\`):`,
    "",
    "| config | KV bytes per slot | slots |",
    "|---|---|---|",
    ...r.slots_per_gib.rows.map((x) => `| ${x.config} | ${mib(x.slot_bytes)} MiB | ${x.slots} |`),
    "",
    "Targets:",
    `- 4 streams' aggregate ≥ 2.2× one stream's: ${holds(a.kvsplit4 >= 2.2 * a.kvsplit1 && (!paired || a.kvsplitPairRatio! >= 2.2))} (${(a.kvsplit4 / a.kvsplit1).toFixed(2)}×, ratio of the medians of ${r.reps} runs${paired ? `; ${a.kvsplitPairRatio!.toFixed(2)}×, median of the runs' ratios; both must hold` : ""})`,
    `- 4 streams' aggregate ≥ 1.3× llama.cpp's with 4 sequences: ${holds(a.kvsplit4 >= 1.3 * a.llama4)} (${(a.kvsplit4 / a.llama4).toFixed(2)}×; medians of ${r.reps} runs)`,
    `- every request answered (200, or 503 only when the queue is full), outputs identical to the request run alone, RSS within 64 MiB: ` +
      `${holds(answered && r.load.identical === (r.load.statuses["200"] ?? 0) && rssGrowth <= 64 * 2 ** 20)} (RSS ${rssGrowth >= 0 ? "+" : ""}${mib(rssGrowth)} MiB)`,
    `- K8V4 serves ≥ 2.4× the F16 slots at the same memory and context: ${holds(k8v4.slots >= 2.4 * f16.slots)} (${k8v4.slots} vs ${f16.slots}: ${(k8v4.slots / f16.slots).toFixed(2)}×)`,
    "",
  ];
}

/** The browser's section (bench/web-bench.ts), when it has been run. */
function webMarkdown(): string[] {
  const file = path.join(RESULTS_DIR, "web.json");
  const heading = "## In the browser: kvsplit in Chromium against wllama and against kvsplit in Node";
  if (!existsSync(file)) return [heading, "Not measured yet: `npm run bench:web`.", ""];
  const r = JSON.parse(readFileSync(file, "utf8")) as WebBenchResult;
  const holds = (ok: boolean) => (ok ? "**holds**" : "**does not hold**");
  const rate = (xs: RunTimes[], which: "prompt" | "gen") => {
    const v = xs.map((x) => (which === "prompt" ? (x.prompt_n * 1000) / x.prompt_ms : (x.gen_n * 1000) / x.gen_ms)).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)]!;
  };
  const lines = [
    heading,
    `Measured ${r.started} by \`npm run bench:web\` from commit ${r.commit} on \`${r.model}\`, ${r.threads} threads, ${r.cpu}; ${r.chromium}`,
    `headless (Debian's), wllama ${r.wllama} (@wllama/wllama: llama.cpp in WebAssembly, SIMD + threads, flash attention on). Each run: a`,
    `fresh cache, a prompt of about 512 tokens (pp), then ${r.gen} generated tokens after it (tg after 512), greedy; kvsplit in the page,`,
    `wllama in the same page and kvsplit in Node alternate run by run; medians of ${r.reps} runs (each engine's own timings).`,
    "",
    "| config | engine | pp t/s | tg t/s |",
    "|---|---|---|---|",
  ];
  const targets: string[] = [];
  for (const [kv, rows] of Object.entries(r.configs)) {
    if (rows.kvsplit_page.length === 0) continue;
    for (const [name, xs] of [["kvsplit in Chromium", rows.kvsplit_page], ["wllama in Chromium", rows.wllama], ["kvsplit in Node", rows.kvsplit_node]] as const) {
      lines.push(`| ${kv} | ${name} | ${rate(xs, "prompt").toFixed(1)} | ${rate(xs, "gen").toFixed(1)} |`);
    }
    const page = { pp: rate(rows.kvsplit_page, "prompt"), tg: rate(rows.kvsplit_page, "gen") };
    const node = rate(rows.kvsplit_node, "gen");
    const wl = { pp: rate(rows.wllama, "prompt"), tg: rate(rows.wllama, "gen") };
    targets.push(
      `- ${kv}: generation in Chromium ≥ 0.8× Node: ${holds(page.tg >= 0.8 * node)} (${(page.tg / node).toFixed(2)}×); ` +
        `≥ 4× wllama's generation: ${holds(page.tg >= 4 * wl.tg)} (${(page.tg / wl.tg).toFixed(2)}×); ` +
        `≥ 8× wllama's prompt: ${holds(page.pp >= 8 * wl.pp)} (${(page.pp / wl.pp).toFixed(2)}×); medians of ${rows.kvsplit_page.length} runs`,
    );
  }
  lines.push("", "Targets:", ...targets);
  if (r.big) {
    const gb = (r.big.bytes / 1e9).toFixed(2);
    lines.push(
      `- a ${gb} GB file (\`${r.big.file}\`) loads from a URL in the page: ${holds(r.big.ok && r.big.bytes > 2.5e9)} ` +
        (r.big.ok
          ? `(downloaded in Range requests into the Origin Private File System in ${r.big.download_s.toFixed(1)} s, weights read into WebAssembly memory and two tokens generated in ${r.big.load_s.toFixed(1)} s; ${r.big.layers} layers)`
          : `(${r.big.error})`),
    );
  }
  return [...lines, ""];
}

function markdown(saved: ReadonlyMap<string, SavedSection>): string {
  return [
    "<!-- Generated by bench/benchmarks.ts (`npm run bench:md`) from bench/results/*.json. Do not edit by hand: rerun the script. -->",
    "# Benchmarks: kvsplit vs llama.cpp",
    "",
    "## Method",
    "- Each run is a fresh process: load the model, warm up (a small batch and two generated tokens), then **pp**: the prompt",
    "  batch from an empty cache (llama-bench's pp), and for each depth **tg**: fill the cache to the depth (not timed), then",
    "  generate 32 tokens one at a time (llama-bench's tg at depth).",
    "- Runs alternate engines run by run; values are medians (the runs behind each are in the table). pp does not depend on the",
    "  depth, so each config's pp is shown on every depth row.",
    `- llama.cpp: node-llama-cpp, CPU, flash attention on, K/V types set with experimentalKvCacheKeyType/ValueType, batch ${BENCH_BATCH_SIZE}, the same context as kvsplit.`,
    "- KV bytes: exact for kvsplit; the format arithmetic (layers × context × row bytes of K and V) for llama.cpp. Peak RSS:",
    "  `process.resourceUsage().maxRSS` of the run's process (llama.cpp maps the model file; kvsplit copies the weights into",
    "  WebAssembly memories).",
    "- The machine is shared: compare ratios measured in the same run, not absolute speeds across sections or days.",
    "",
    ...SECTIONS.flatMap((s) => sectionMarkdown(s, saved.get(s.id) ?? null)),
    ...conformanceMarkdown(),
    ...serveMarkdown(),
    ...webMarkdown(),
  ].join("\n");
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

function readSaved(): Map<string, SavedSection> {
  const saved = new Map<string, SavedSection>();
  for (const s of SECTIONS) {
    const file = path.join(RESULTS_DIR, `${s.id}.json`);
    if (existsSync(file)) saved.set(s.id, JSON.parse(readFileSync(file, "utf8")) as SavedSection);
  }
  return saved;
}

async function main(): Promise<void> {
  const opts = options();
  const engines: BenchEngine[] = ["kvsplit", "llama.cpp"];
  mkdirSync(RESULTS_DIR, { recursive: true });
  for (const section of opts.sections) {
    const modelPath = sectionModel(section, opts.models[section.id]);
    const reps = opts.reps ?? section.reps;
    const command =
      `kvsplit bench -m ${shownPath(modelPath)} --configs ${section.configs} --depth ${section.depths.join(",")} -p ${section.promptTokens} ` +
      `-n 32 --reps ${reps} -t ${opts.threads}${section.contextSize ? ` -c ${section.contextSize}` : ""} --vs llama.cpp`;
    const started = new Date();
    const loadBefore = os.loadavg();
    const warning = busyWarning(loadBefore);
    if (warning) log(`benchmarks: warning: ${warning}`);
    log(`benchmarks [${section.id}]: ${command}`);
    const report = await runBench(
      {
        modelPath, configs: parseKvConfigList(section.configs), depths: section.depths, promptTokens: section.promptTokens, genTokens: 32,
        reps, threads: opts.threads, engines, contextSize: section.contextSize,
      },
      log,
    );
    const saved: SavedSection = {
      id: section.id, command, started: started.toISOString(), commit: gitDescription(REPO_ROOT), machine: machineLines(loadBefore),
      modelBytes: statSync(modelPath).size, modelConfig: inspectBenchModel(modelPath), report,
    };
    writeAtomically(path.join(RESULTS_DIR, `${section.id}.json`), JSON.stringify(saved, null, 1) + "\n");
    writeAtomically(opts.out, markdown(readSaved()));
    log(`benchmarks [${section.id}]: done in ${(report.seconds / 60).toFixed(1)} min; wrote ${opts.out}`);
  }
  if (opts.sections.length === 0) writeAtomically(opts.out, markdown(readSaved()));
}

main().catch((err: unknown) => {
  log(`benchmarks: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
