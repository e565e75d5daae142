/**
 * `kvsplit tune`: a per-layer K/V schedule for a bit or memory budget (KVTuner's idea, measured, not searched).
 *
 *   1. Measure: against an f32-cache baseline on a calibration text, the mean KL divergence of every single change
 *      "layer l's side s in format f, every other layer f16". Its cost is that KLD minus the all-f16 run's (the f16
 *      floor every cell shares), at least 0; f16 itself costs 0.
 *   2. Allocate: the costs are taken as additive (small, independent perturbations of the output distribution), so
 *      choosing one format per (layer, side) to minimise the summed cost within a byte budget is a multiple-choice
 *      knapsack, solved exactly by dynamic programming over bytes per token.
 *   3. Check: the chosen schedule is run on the calibration text; its measured KLD is reported beside the prediction.
 */
import type { KvPair } from "../api.js";
import { getKvFormat, rowBytes } from "../formats/table.js";
import type { ExactFormatName, KvFormatName } from "../formats/types.js";
import { paddedRowValues } from "../kv/cache.js";
import type { Model } from "../model/model.js";
import { BaselineDistributions } from "./kld-file.js";
import { runPerplexity, type EvalText } from "./perplexity.js";

export type TuneSide = "k" | "v";
export const TUNE_SIDES: readonly TuneSide[] = ["k", "v"];
/** Candidate formats by default: llama.cpp's quantized K/V types and kvsplit's own codebook ones (f16 is always a candidate). */
export const DEFAULT_TUNE_FORMATS: readonly KvFormatName[] = ["q8_0", "q5_1", "q5_0", "q4_1", "iq4_nl", "q4_0", "iq3_nl", "iq2_nl", "iq3_e8", "iq2_e8"];

/** One measured cell: layer × side × format. */
export interface TuneCell {
  layer: number;
  side: TuneSide;
  format: KvFormatName;
  /** Bytes one position's row takes on this layer's side. */
  rowBytes: number;
  /** Mean KLD of the run with only this cell changed from f16. */
  kld: number;
  /** kld − the all-f16 run's KLD, at least 0: what the allocation sums. */
  cost: number;
}

export interface TuneMeasurement {
  nLayers: number;
  kvDim: number;
  formats: KvFormatName[];
  /** Mean KLD of the all-f16 cache against the f32 baseline. */
  f16Kld: number;
  cells: TuneCell[];
}

/** The f32-cache distributions of evalText every tune run is measured against (and the chosen schedule checked). */
export function tuneBaseline(model: Model, evalText: EvalText, rotation: boolean): BaselineDistributions {
  const base = new BaselineDistributions(model.config.nVocab, evalText.ctx, evalText.chunks.length);
  runPerplexity(model, evalText, { kv: { k: "f32", v: "f32" }, rotation, record: base });
  return base;
}

export type TuneProgress = { done: number; total: number; label: string };

/** Bytes of one row (kvDim values) in `format`. */
function kvRow(format: KvFormatName, kvDim: number): number {
  const f = getKvFormat(format);
  return rowBytes(f, paddedRowValues(f, kvDim));
}

/**
 * Step 1: the f32 baseline, the all-f16 run and one run per (layer, side, format) on evalText; onCell after each
 * (partial results), onProgress after every run.
 */
export function measureTuneCosts(
  model: Model,
  evalText: EvalText,
  opts: {
    formats: readonly KvFormatName[];
    rotation: boolean;
    /** tuneBaseline of the same text, when the caller has it (else computed here). */
    base?: BaselineDistributions;
    /** Exact recent window every run keeps (SessionOptions.kvWindow) and its rows' format: the costs are measured under it. */
    kvWindow?: number;
    kvExactFormat?: ExactFormatName;
    onProgress?: (p: TuneProgress) => void;
    onCell?: (m: TuneMeasurement) => void;
  },
): TuneMeasurement {
  const c = model.config;
  const formats = opts.formats.filter((f) => f !== "f16");
  const total = 2 + c.nLayers * TUNE_SIDES.length * formats.length;
  let done = 0;
  const step = (label: string) => opts.onProgress?.({ done: ++done, total, label });
  const base = opts.base ?? tuneBaseline(model, evalText, opts.rotation);
  step("f32 baseline");
  const allF16: KvPair[] = Array.from({ length: c.nLayers }, () => ({ k: "f16", v: "f16" }));
  const klds = (kv: readonly KvPair[]) => runPerplexity(model, evalText, { kv, kvWindow: opts.kvWindow, kvExactFormat: opts.kvExactFormat, rotation: opts.rotation, baseline: base }).kld!.kldMean;
  const f16Kld = klds(allF16);
  step("all f16");
  const m: TuneMeasurement = { nLayers: c.nLayers, kvDim: c.kvDim, formats: [...formats], f16Kld, cells: [] };
  for (let layer = 0; layer < c.nLayers; layer++) {
    for (const side of TUNE_SIDES) {
      for (const format of formats) {
        const kv = allF16.map((p, l) => (l === layer ? { ...p, [side]: format } : p));
        const kld = klds(kv);
        m.cells.push({ layer, side, format, rowBytes: kvRow(format, c.kvDim), kld, cost: Math.max(0, kld - f16Kld) });
        step(`layer ${layer} ${side.toUpperCase()} ${format}`);
        opts.onCell?.(m);
      }
    }
  }
  return m;
}

export interface TuneChoice {
  /** (nLayers) the chosen pair per layer. */
  layers: KvPair[];
  /** Bytes per token of the whole cache (all layers, K and V). */
  bytesPerToken: number;
  bitsPerValue: number;
  /** Summed cost of the choices + the f16 floor: the predicted mean KLD. */
  predictedKld: number;
}

/**
 * Step 2: for each (layer, side) one format (f16 or a measured one) so that the bytes per token are at most
 * maxBytesPerToken and the summed cost is least (exact: dynamic programming over bytes, ties to fewer bytes).
 * RangeError when even the smallest formats do not fit.
 */
export function allocateSchedule(m: TuneMeasurement, maxBytesPerToken: number): TuneChoice {
  const f16Row = kvRow("f16", m.kvDim);
  // (items) the choices of each (layer, side): f16 at cost 0, then every measured format
  const items = [];
  for (let layer = 0; layer < m.nLayers; layer++) {
    for (const side of TUNE_SIDES) {
      const measured = m.cells.filter((c) => c.layer === layer && c.side === side);
      items.push({ layer, side, choices: [{ format: "f16" as KvFormatName, rowBytes: f16Row, cost: 0 }, ...measured] });
    }
  }
  // bytes in units of their greatest common divisor keep the table small
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const unit = items.flatMap((it) => it.choices.map((c) => c.rowBytes)).reduce(gcd);
  const capacity = Math.floor(maxBytesPerToken / unit);
  const minimum = items.reduce((s, it) => s + Math.min(...it.choices.map((c) => c.rowBytes / unit)), 0);
  if (minimum > capacity) {
    throw new RangeError(`the budget of ${maxBytesPerToken} bytes per token is below the smallest schedule's ${minimum * unit} (every layer in its smallest format)`);
  }
  // best[i][b]: least cost of items 0..i-1 in exactly b units (Infinity: impossible); pick[i][b]: the choice index
  let best = new Float64Array(capacity + 1).fill(Infinity); // (capacity + 1)
  best[0] = 0;
  const picks: Int8Array[] = []; // (items, capacity + 1)
  for (const it of items) {
    const next = new Float64Array(capacity + 1).fill(Infinity); // (capacity + 1)
    const pick = new Int8Array(capacity + 1).fill(-1); // (capacity + 1)
    for (let b = 0; b <= capacity; b++) {
      if (best[b] === Infinity) continue;
      it.choices.forEach((choice, ci) => {
        const nb = b + choice.rowBytes / unit;
        if (nb > capacity) return;
        const cost = best[b] + choice.cost;
        if (cost < next[nb]) {
          next[nb] = cost;
          pick[nb] = ci;
        }
      });
    }
    picks.push(pick);
    best = next;
  }
  let end = 0;
  for (let b = 1; b <= capacity; b++) if (best[b] < best[end]) end = b;
  const layers: KvPair[] = Array.from({ length: m.nLayers }, () => ({ k: "f16", v: "f16" }));
  for (let i = items.length - 1, b = end; i >= 0; i--) {
    const choice = items[i].choices[picks[i][b]];
    layers[items[i].layer][items[i].side] = choice.format;
    b -= choice.rowBytes / unit;
  }
  const bytesPerToken = end * unit;
  return { layers, bytesPerToken, bitsPerValue: (8 * bytesPerToken) / (m.nLayers * m.kvDim * 2), predictedKld: m.f16Kld + best[end] };
}

/** Bytes per token of the smallest schedule: every layer's K and V in the smallest of `formats` (or f16). */
export function minimumBytesPerToken(formats: readonly KvFormatName[], nLayers: number, kvDim: number): number {
  return 2 * nLayers * Math.min(...[...formats, "f16" as KvFormatName].map((f) => kvRow(f, kvDim)));
}

/** Bytes per token for an average of `bits` bits per cached value (K and V of every layer). */
export function bytesPerTokenForBits(bits: number, nLayers: number, kvDim: number): number {
  return (bits * nLayers * kvDim * 2) / 8;
}
