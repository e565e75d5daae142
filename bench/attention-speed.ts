/**
 * Decode attention alone, per K/V config: the time of one generated token's KV work in every layer (append the new
 * position's K and V, then attend over all positions) at a given depth, on the model's pool of threads. The weights'
 * matrix products are left out, so the formats' differences are not hidden under ~95% of a token's time that is the
 * same in every config (what `kvsplit bench` measures end to end). `--batch N` times a prompt's attention instead: the
 * positions are appended and attended N at a time (one attendBatch per layer), as a prompt's batches are.
 *
 *   node dist/bench/attention-speed.js [--configs K4V4,K3V3,...] [--depth 2048] [--tokens 64] [--batch 1] [--reps 5]
 *        [-t 2] [--warmup 4] [--shape tinyllama] [--json FILE]
 *
 * Each config gets a cache of the --shape (tinyllama: 22 layers, 32 query heads, 4 kv heads, head_dim 64), rotation on,
 * filled with Gaussian K/V rows (prefill in batches of 64); then each rep decodes the next `tokens` positions in every
 * layer, timed on the wall clock. A cache with an exact window cannot be set back (its ring has moved on), so the reps
 * continue one another: the prefill stops where the warm-up (`warmup` reps' worth of tokens per config, untimed) and
 * the reps together are centred on `depth`. Reps run interleaved config by config (rep 1 of each, then rep 2, ...;
 * configs in reverse order every other rep), so a slow spell of a shared machine spreads over all configs; the median
 * per config is reported, with the ratio to the first config.
 */
import { writeFileSync, renameSync } from "node:fs";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { KvCache } from "../src/kv/cache.js";
import { kvPairsOf, parseKvConfigList } from "../src/kv/shorthand.js";
import { kvLayerFormats } from "../src/model/memory.js";
import { ThreadPool } from "../src/runtime/pool.js";
import { defaultRuntime } from "../src/runtime/wasm.js";
import { gaussianRow, seededRandom } from "../test/helpers/kv-reference.js";

const SHAPES = {
  tinyllama: { nLayers: 22, nHeads: 32, nKvHeads: 4, headDim: 64 },
  "llama-8b": { nLayers: 32, nHeads: 32, nKvHeads: 8, headDim: 128 },
} as const;
export type ShapeName = keyof typeof SHAPES;
const PREFILL_BATCH = 64;

export interface AttentionRow {
  config: string;
  k: string;
  v: string;
  /** Microseconds per token (every layer's append + attend), one per rep. */
  us_per_token: number[];
  median_us: number;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export interface AttentionOptions {
  configs: string;
  depth: number;
  tokens: number;
  /** Tokens appended and attended together (1: decode; more: a prompt's batches). */
  batch: number;
  reps: number;
  warmup: number;
  threads: number;
  shape: ShapeName;
}

export interface AttentionReport extends AttentionOptions {
  /** The command that reproduces it. */
  command: string;
  /** First and last position decoded in the timed reps. */
  from: number;
  to: number;
  rows: AttentionRow[];
  seconds: number;
}

export const ATTENTION_DEFAULTS: AttentionOptions = {
  configs: "K4V4,K3V3,K2V2,K3V2,K4V3,K8V4,K8V3,K4V4+c,iq3_e8/iq3_e8,iq2_e8/iq2_e8", depth: 2048, tokens: 64, batch: 1, reps: 5, warmup: 4, threads: 2, shape: "tinyllama",
};

/** Measure every config's decode attention (see the file comment); progress lines go to `log`. */
export function measureAttention(o: AttentionOptions, log: (line: string) => void): AttentionReport {
  const shape = SHAPES[o.shape];
  if (!shape) throw new Error(`--shape: '${o.shape}' is not one of ${Object.keys(SHAPES).join(", ")}`);
  const { depth, tokens, batch, reps, warmup, threads } = o;
  for (const [flag, n] of [["--depth", depth], ["--tokens", tokens], ["--batch", batch], ["--reps", reps], ["-t", threads]] as const) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer`);
  }
  if (tokens % batch !== 0) throw new Error(`--tokens ${tokens} is not a multiple of --batch ${batch}`);
  if (batch > PREFILL_BATCH) throw new Error(`--batch: at most ${PREFILL_BATCH} (the caches are sized for ${PREFILL_BATCH}-token batches)`);
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error("--warmup: expected a whole number");
  const configs = parseKvConfigList(o.configs);
  const command = `node dist/bench/attention-speed.js --configs ${o.configs} --depth ${depth} --tokens ${tokens}${batch > 1 ? ` --batch ${batch}` : ""} --reps ${reps} ` +
    `--warmup ${warmup} -t ${threads} --shape ${o.shape}`;
  const started = Date.now();
  const rt = defaultRuntime();
  const pool = threads > 1 ? new ThreadPool(rt.memory, threads) : undefined;
  const kvDim = shape.nKvHeads * shape.headDim;
  const qDim = shape.nHeads * shape.headDim;
  const decoded = (warmup + reps) * tokens;
  const start = depth - Math.floor(decoded / 2); // positions prefilled
  if (start < 1) throw new Error(`--depth ${depth} is too small for ${warmup + reps} reps of ${tokens} tokens`);
  const contextSize = start + decoded;
  const rand = seededRandom(2048);
  // inputs shared by every config: (contextSize, kvDim) f32 K and V rows, (tokens, qDim) f32 queries
  const kRows = rt.alloc(contextSize * kvDim * 4);
  const vRows = rt.alloc(contextSize * kvDim * 4);
  const queries = rt.alloc(tokens * qDim * 4);
  const out = rt.alloc(batch * qDim * 4); // (batch, qDim) f32
  for (let p = 0; p < contextSize; p++) {
    rt.f32(kRows + p * kvDim * 4, kvDim).set(gaussianRow(rand, kvDim));
    rt.f32(vRows + p * kvDim * 4, kvDim).set(gaussianRow(rand, kvDim));
  }
  for (let t = 0; t < tokens; t++) rt.f32(queries + t * qDim * 4, qDim).set(gaussianRow(rand, qDim));

  const caches = configs.map((config) => {
    const cache = new KvCache(rt, {
      ...shape, contextSize, rotation: true, layers: kvLayerFormats(shape, kvPairsOf(config)), maxTokens: PREFILL_BATCH,
      ...(config.window ? { window: config.window } : {}), ...(config.sinks ? { sinks: config.sinks } : {}),
      ...(config.exactFormat ? { exactFormat: config.exactFormat } : {}),
      ...(pool ? { pool } : {}),
    });
    for (let p0 = 0; p0 < start; p0 += PREFILL_BATCH) {
      const n = Math.min(PREFILL_BATCH, start - p0);
      for (let l = 0; l < shape.nLayers; l++) cache.appendBatch(l, p0, n, kRows + p0 * kvDim * 4, vRows + p0 * kvDim * 4);
      cache.setLength(p0 + n);
    }
    return cache;
  });

  /** One rep of one config: the next `tokens` positions, `batch` at a time; microseconds per token. */
  const runRep = (cache: KvCache, rep: number): number => {
    const t0 = process.hrtime.bigint();
    for (let t = 0; t < tokens; t += batch) {
      const pos = start + rep * tokens + t;
      for (let l = 0; l < shape.nLayers; l++) {
        cache.appendBatch(l, pos, batch, kRows + pos * kvDim * 4, vRows + pos * kvDim * 4);
        cache.attendBatch(l, pos, batch, queries + t * qDim * 4, out);
      }
      cache.setLength(pos + batch);
    }
    return Number(process.hrtime.bigint() - t0) / 1000 / tokens;
  };

  const rows: AttentionRow[] = configs.map((c) => ({ config: c.name, k: String(c.k), v: String(c.v), us_per_token: [], median_us: 0 }));
  try {
    // warm-up: V8 first runs the (large) attention kernel in its baseline tier and compiles the optimized one in the
    // background; timed reps before that would measure the baseline tier
    for (let w = 0; w < warmup; w++) caches.forEach((cache) => runRep(cache, w));
    const timed = Date.now();
    for (let r = 0; r < reps; r++) {
      // configs forward in even reps, backward in odd ones: a machine that slows (or speeds up) during a rep
      // does not always favour the configs measured first
      const order = caches.map((_, i) => (r % 2 === 0 ? i : caches.length - 1 - i));
      for (const i of order) rows[i]!.us_per_token.push(runRep(caches[i]!, warmup + r));
      const done = (r + 1) / reps;
      const eta = ((Date.now() - timed) / done) * (1 - done) / 1000;
      log(`attention-speed: rep ${r + 1}/${reps}: ${rows.map((row) => `${row.config} ${row.us_per_token[r]!.toFixed(0)} µs`).join(", ")} (ETA ${eta.toFixed(0)} s)`);
    }
  } finally {
    for (const c of caches) c.dispose();
    pool?.dispose();
    for (const p of [kRows, vRows, queries, out]) rt.free(p);
  }
  for (const row of rows) row.median_us = median(row.us_per_token);
  return {
    ...o, command, from: start + warmup * tokens, to: contextSize - 1, rows, seconds: (Date.now() - started) / 1000,
  };
}

/** The report as a markdown table, with each config's speed relative to `reference` (the first row by default). */
export function attentionTable(r: AttentionReport, reference = r.rows[0]!.config): string[] {
  const base = r.rows.find((row) => row.config === reference)!.median_us;
  return [
    `| config | K / V | µs per token | runs | speed vs ${reference} |`,
    "|---|---|---|---|---|",
    ...r.rows.map((row) => `| ${row.config} | ${row.k} / ${row.v} | ${row.median_us.toFixed(0)} | ` +
      `${row.us_per_token.map((u) => u.toFixed(0)).join(", ")} | ${(base / row.median_us).toFixed(2)}× |`),
  ];
}

function main(): void {
  const { values } = parseArgs({
    options: {
      configs: { type: "string", default: ATTENTION_DEFAULTS.configs },
      depth: { type: "string", default: String(ATTENTION_DEFAULTS.depth) },
      tokens: { type: "string", default: String(ATTENTION_DEFAULTS.tokens) },
      batch: { type: "string", default: String(ATTENTION_DEFAULTS.batch) },
      reps: { type: "string", default: String(ATTENTION_DEFAULTS.reps) },
      warmup: { type: "string", default: String(ATTENTION_DEFAULTS.warmup) },
      threads: { type: "string", short: "t", default: String(ATTENTION_DEFAULTS.threads) },
      shape: { type: "string", default: ATTENTION_DEFAULTS.shape },
      json: { type: "string" },
    },
  });
  const report = measureAttention({
    configs: values.configs, depth: Number(values.depth), tokens: Number(values.tokens), batch: Number(values.batch), reps: Number(values.reps),
    warmup: Number(values.warmup), threads: Number(values.threads), shape: values.shape as ShapeName,
  }, (line) => process.stderr.write(`${line}\n`));
  const shape = SHAPES[report.shape];
  const what = report.batch > 1 ? `prompt attention (append + attend in batches of ${report.batch}` : "decode attention (append + attend";
  console.log(`${what}, ${shape.nLayers} layers, ${report.shape} shape), positions ${report.from} .. ` +
    `${report.to} (centre ${report.depth}), ${report.threads} thread${report.threads > 1 ? "s" : ""}, ${report.tokens} tokens a rep, ` +
    `median of ${report.reps} reps (interleaved)\n`);
  console.log(attentionTable(report).join("\n"));
  if (values.json) {
    const tmp = `${values.json}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`);
    renameSync(tmp, values.json);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (err) {
    console.error(`attention-speed: error: ${(err as Error).message}`);
    process.exit(1);
  }
}
