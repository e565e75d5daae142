/**
 * The comparison's plots, drawn with Vega-Lite (compiled to Vega, rendered headless to SVG) and rasterised to PNG
 * with resvg in DejaVu Sans:
 *   kv-memory          KV cache memory against context length, one line per configuration
 *   quality-vs-memory  mean KL divergence against bytes per token, the Pareto front marked
 *   kv-sensitivity     keys only / values only / both quantized, per format (bit width)
 *   speed              prompt and generation tokens/s per configuration
 */
import path from "node:path";
import * as vl from "vega-lite";
import * as vega from "vega";
import { Resvg } from "@resvg/resvg-js";
import { getKvFormat } from "../formats/table.js";
import type { KvFormatName } from "../formats/types.js";
import { paretoFront, type CompareResult, type CompareRow } from "../eval/compare.js";
import { writeFileAtomic } from "./atomic.js";

const FONT = "DejaVu Sans";
const MIB = 1024 * 1024;

/** Shared look: font everywhere, white background, readable sizes. */
export const CONFIG = {
  font: FONT,
  background: "white",
  title: { fontSize: 15, subtitleFontSize: 11, subtitleColor: "#555", anchor: "start" },
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 320 },
  view: { stroke: "#ccc" },
} as const;

export interface PlotSpec {
  /** File name without extension. */
  name: string;
  title: string;
  spec: vl.TopLevelSpec;
}

export interface WrittenPlot {
  name: string;
  title: string;
  svg: string;
  png: string;
}

/** Dash patterns and point shapes of lines that would otherwise hide each other (same bytes per token). */
const LINE_DASHES: number[][] = [[1, 0], [8, 4], [2, 3], [8, 3, 2, 3]];
const POINT_SHAPES = ["circle", "triangle-up", "square", "diamond"];

/** KV memory (MiB) against context length, one line per configuration; lines of equal bytes differ in dash and shape. */
export function memoryPlot(result: CompareResult): PlotSpec {
  const rows = mainRows(result);
  const contexts = [...new Set([0, 512, 1024, ...result.memoryContexts])].sort((a, b) => a - b);
  const values = rows.flatMap((r) => contexts.map((n) => ({ config: r.config, context: n, mib: (n * r.kvBytesPerToken) / MIB })));
  const configs = rows.map((r) => r.config);
  // (configs) how many earlier configs have the same bytes per token: 0 for the first of each size
  const sameBytesRank = rows.map((r, i) => rows.slice(0, i).filter((o) => o.kvBytesPerToken === r.kvBytesPerToken).length);
  // "K8V4 = K4V8 (same bytes: one dashed line)" for each size several configs share
  const sharedLines = [...new Set(rows.map((r) => r.kvBytesPerToken))]
    .map((bytes) => rows.filter((r) => r.kvBytesPerToken === bytes).map((r) => r.config))
    .filter((names) => names.length > 1)
    .map((names) => `${names.join(" = ")} (same bytes: one dashed line)`);
  const title = "KV cache memory vs context length";
  return {
    name: "kv-memory",
    title,
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: { text: title, subtitle: [`${modelLabel(result)}; all layers, K + V (trained context ${result.trainedContext})`, ...sharedLines] },
      width: 560,
      height: 340,
      config: CONFIG,
      data: { values },
      mark: { type: "line", point: true },
      encoding: {
        x: { field: "context", type: "quantitative", title: "context length (tokens)" },
        y: { field: "mib", type: "quantitative", title: "KV cache (MiB)" },
        color: { field: "config", type: "nominal", title: "K/V config", sort: configs },
        // configs with the same bytes per token draw the same line: each gets its own dash and point shape
        strokeDash: { field: "config", type: "nominal", title: "K/V config", sort: configs, scale: { domain: configs, range: configs.map((_, i) => LINE_DASHES[sameBytesRank[i] % LINE_DASHES.length]) } },
        shape: { field: "config", type: "nominal", title: "K/V config", sort: configs, scale: { domain: configs, range: configs.map((_, i) => POINT_SHAPES[sameBytesRank[i] % POINT_SHAPES.length]) } },
        tooltip: [{ field: "config" }, { field: "context" }, { field: "mib", format: ".2f" }],
      },
    },
  };
}

/**
 * Mean KLD (log scale) against bytes per token; front points filled and joined by a line. With kvsplit's own configs
 * among the rows (per-layer schedules, exact windows: llama.cpp runs neither), two fronts: llama.cpp's (one K/V pair
 * for all layers) and kvsplit's (its own included); its own are drawn as diamonds.
 */
export function qualityPlot(result: CompareResult): PlotSpec {
  // Sweep rows crowd one corner with unreadable labels; the sensitivity plot shows them instead.
  const plotted = result.rows.filter((r) => r.kldMean > 0 && r.group !== "sweep");
  const front = paretoFront(plotted);
  const hasOwn = plotted.some((r) => r.kvsplitOnly);
  const llamaFront = paretoFront(plotted.filter((r) => !r.kvsplitOnly));
  const values = plotted.map((r) => ({
    config: r.config,
    bytes: r.kvBytesPerToken,
    kld: r.kldMean,
    pareto: front.has(r.config) ? "on the Pareto front" : "dominated",
    kind: r.kvsplitOnly ? "kvsplit's own (format, schedule, window)" : "one K/V pair (llama.cpp's formats)",
  }));
  const frontValues = values.filter((v) => v.pareto === "on the Pareto front").sort((a, b) => a.bytes - b.bytes);
  const llamaFrontValues = values.filter((v) => llamaFront.has(v.config)).sort((a, b) => a.bytes - b.bytes);
  const frontLine = (data: typeof values, color: string, dash: number[]) => ({
    data: { values: data },
    mark: { type: "line" as const, color, strokeDash: dash },
    encoding: { x: { field: "bytes", type: "quantitative" as const }, y: { field: "kld", type: "quantitative" as const } },
  });
  const omitted = result.rows.filter((r) => r.kldMean <= 0 && r.group !== "sweep").length;
  const title = "Quality loss vs KV memory (Pareto front marked)";
  const subtitle =
    `${modelLabel(result)}; mean KL divergence from the f32 cache over ${result.nScored} positions (lower is better)` +
    (omitted > 0 ? `; ${omitted} config(s) with KLD 0 not shown on the log scale` : "");
  const fronts = hasOwn ? ["red dashed: kvsplit's Pareto front (its own configs included); grey dotted: llama.cpp's (one K/V pair for all layers)"] : [];
  return {
    name: "quality-vs-memory",
    title,
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: { text: title, subtitle: [subtitle, ...fronts] },
      width: 560,
      height: 360,
      config: CONFIG,
      layer: [
        // with schedules: llama.cpp's front (grey, dotted) under kvsplit's (red, dashed)
        ...(hasOwn ? [frontLine(llamaFrontValues, "#7f7f7f", [2, 3])] : []),
        frontLine(frontValues, "#d62728", [6, 3]),
        {
          data: { values },
          mark: { type: "point", filled: true, size: 90 },
          encoding: {
            x: { field: "bytes", type: "quantitative", title: "KV bytes per token (all layers, K + V)", scale: { zero: false, padding: 20 } },
            y: { field: "kld", type: "quantitative", title: "mean KL divergence (nats, log scale)", scale: { type: "log" }, axis: { format: ".0e" } },
            color: {
              field: "pareto",
              type: "nominal",
              title: null,
              scale: { domain: ["on the Pareto front", "dominated"], range: ["#d62728", "#7f7f7f"] },
            },
            ...(hasOwn
              ? { shape: { field: "kind", type: "nominal" as const, title: null, scale: { domain: ["one K/V pair (llama.cpp's formats)", "kvsplit's own (format, schedule, window)"], range: ["circle", "diamond"] } } }
              : {}),
            tooltip: [{ field: "config" }, { field: "bytes" }, { field: "kld", format: ".3e" }],
          },
        },
        {
          data: { values },
          mark: { type: "text", align: "left", dx: 7, dy: -7, fontSize: 11 },
          encoding: { x: { field: "bytes", type: "quantitative" }, y: { field: "kld", type: "quantitative", scale: { type: "log" } }, text: { field: "config" } },
        },
      ],
    },
  };
}

export type SensitivitySide = "keys only" | "values only" | "both";

export interface SensitivityPoint {
  format: KvFormatName;
  bits: number;
  side: SensitivitySide;
  config: string;
  kldMean: number;
  deltaPplPct: number;
}

/** The rows that quantize only K (V f16), only V (K f16), or both to the same format. */
export function sensitivityPoints(rows: readonly CompareRow[]): SensitivityPoint[] {
  const out: SensitivityPoint[] = [];
  for (const r of rows) {
    if (r.k === "mixed" || r.v === "mixed" || r.kvsplitOnly) continue; // a schedule or window is no sensitivity point
    let side: SensitivitySide | null = null;
    let format: KvFormatName | null = null;
    if (r.v === "f16" && r.k !== "f16") [side, format] = ["keys only", r.k];
    else if (r.k === "f16" && r.v !== "f16") [side, format] = ["values only", r.v];
    else if (r.k === r.v && r.k !== "f16") [side, format] = ["both", r.k];
    if (side === null || format === null) continue;
    const f = getKvFormat(format);
    out.push({ format, bits: (8 * f.bytesPerBlock) / f.blockSize, side, config: r.config, kldMean: r.kldMean, deltaPplPct: r.deltaPplPct });
  }
  return out;
}

/** Grouped bars: for each format, mean KLD with keys only, values only and both quantized. */
export function sensitivityPlot(result: CompareResult): PlotSpec {
  const points = sensitivityPoints(result.rows).filter((p) => p.kldMean > 0);
  const formats = [...new Set(points.sort((a, b) => b.bits - a.bits).map((p) => p.format))];
  const values = points.map((p) => ({ ...p, label: `${p.format} (${p.bits} bits)`, kld: p.kldMean }));
  const labels = formats.map((f) => values.find((v) => v.format === f)!.label);
  // Bars on a log scale need a floor to start from: the decade below the smallest value.
  const floor = values.length > 0 ? 10 ** Math.floor(Math.log10(Math.min(...values.map((v) => v.kld)))) : 1e-9;
  const title = "Keys vs values: sensitivity to quantization";
  const sides: SensitivitySide[] = ["keys only", "values only", "both"];
  return {
    name: "kv-sensitivity",
    title,
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      // a subtitle wider than the plot would widen the picture with empty space: two short lines instead
      title: { text: title, subtitle: [modelLabel(result), "the other side stays f16; mean KL divergence from the f32 cache (log scale)"] },
      width: Math.max(420, 130 * Math.max(1, formats.length)),
      height: 340,
      config: CONFIG,
      data: { values },
      encoding: {
        x: { field: "label", type: "nominal", title: "format of the quantized side(s)", sort: labels, axis: { labelAngle: 0 } },
        xOffset: { field: "side", type: "nominal", sort: sides },
        y: {
          field: "kld",
          type: "quantitative",
          title: "mean KL divergence (nats, log scale)",
          scale: { type: "log", domainMin: floor, domainMax: values.length > 0 ? 2 * Math.max(...values.map((v) => v.kld)) : 1 },
          axis: { format: ".0e" },
        },
        color: { field: "side", type: "nominal", title: "quantized", sort: sides, scale: { domain: sides, range: ["#1f77b4", "#ff7f0e", "#2ca02c"] } },
      },
      layer: [
        {
          mark: { type: "bar" },
          encoding: { y2: { datum: floor }, tooltip: [{ field: "config" }, { field: "kld", format: ".3e" }, { field: "deltaPplPct", format: ".3f" }] },
        },
        { mark: { type: "text", dy: -6, fontSize: 10, angle: 0 }, encoding: { text: { field: "kld", format: ".1e" } } },
      ],
    },
  };
}

/** Prompt and generation tokens per second per configuration (the f32 baseline first). */
export function speedPlot(result: CompareResult): PlotSpec {
  const configs = ["F32 (base)", ...result.rows.map((r) => r.config)];
  const all = [
    { config: "F32 (base)", ppTps: result.baseline.ppTps, tgTps: result.baseline.tgTps },
    ...result.rows.map((r) => ({ config: r.config, ppTps: r.ppTps, tgTps: r.tgTps })),
  ];
  const values = all.flatMap((r) => [
    { config: r.config, measure: "prompt", tps: r.ppTps },
    { config: r.config, measure: "generation", tps: r.tgTps },
  ]).filter((v) => Number.isFinite(v.tps));
  const title = "Speed per K/V config";
  const { promptTokens, genTokens } = result.speed;
  return {
    name: "speed",
    title,
    spec: {
      $schema: "https://vega.github.io/schema/vega-lite/v6.json",
      title: {
        text: title,
        subtitle: [
          `${modelLabel(result)}; fastest of ${result.speed.reps ?? 3} short runs: ${promptTokens}-token prompt, then ${genTokens} single tokens`,
          "indicative only: kvsplit bench measures properly",
        ],
      },
      width: Math.max(480, 60 * configs.length),
      height: 320,
      config: CONFIG,
      data: { values },
      mark: { type: "bar" },
      encoding: {
        x: { field: "config", type: "nominal", title: "K/V config", sort: configs, axis: { labelAngle: configs.length > 8 ? -40 : 0 } },
        xOffset: { field: "measure", type: "nominal", sort: ["prompt", "generation"] },
        y: { field: "tps", type: "quantitative", title: "tokens per second" },
        color: { field: "measure", type: "nominal", title: "phase", sort: ["prompt", "generation"] },
        tooltip: [{ field: "config" }, { field: "measure" }, { field: "tps", format: ".1f" }],
      },
    },
  };
}

export function comparePlots(result: CompareResult): PlotSpec[] {
  const plots = [memoryPlot(result), qualityPlot(result), speedPlot(result)];
  if (sensitivityPoints(result.rows).some((p) => p.kldMean > 0)) plots.splice(2, 0, sensitivityPlot(result));
  return plots;
}

/** Vega-Lite spec → SVG text (headless Vega). */
export async function renderSvg(spec: vl.TopLevelSpec): Promise<string> {
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: "none" });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** How SVGs are rasterised: twice their size, white background, text in DejaVu Sans from the system fonts. */
export const RESVG_OPTIONS = {
  background: "white",
  fitTo: { mode: "zoom" as const, value: 2 },
  font: { loadSystemFonts: true, defaultFontFamily: FONT, sansSerifFamily: FONT },
};

/** SVG → PNG bytes. */
export function svgToPng(svg: string): Uint8Array {
  return new Resvg(svg, RESVG_OPTIONS).render().asPng();
}

/** Render every plot of `result` into `dir` as NAME.svg and NAME.png (each written atomically). */
export async function writeComparePlots(result: CompareResult, dir: string): Promise<WrittenPlot[]> {
  const written: WrittenPlot[] = [];
  for (const p of comparePlots(result)) {
    const svg = await renderSvg(p.spec);
    const svgPath = path.join(dir, `${p.name}.svg`);
    const pngPath = path.join(dir, `${p.name}.png`);
    writeFileAtomic(svgPath, svg);
    writeFileAtomic(pngPath, svgToPng(svg));
    written.push({ name: p.name, title: p.title, svg: svgPath, png: pngPath });
  }
  return written;
}

/** The rows the memory and speed plots draw: the configurations asked for (all rows if none were). */
function mainRows(result: CompareResult): CompareRow[] {
  const main = result.rows.filter((r) => r.group === "config");
  return main.length > 0 ? main : result.rows;
}

function modelLabel(result: CompareResult): string {
  return path.basename(result.modelPath);
}
