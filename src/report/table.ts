/**
 * Plain-text tables for the terminal: columns padded to their widest cell, numbers right-aligned.
 */
import type { CompareResult, CompareRow } from "../eval/compare.js";
import { paretoFront } from "../eval/compare.js";

export type Align = "left" | "right";

export interface Column {
  title: string;
  align: Align;
}

/** Columns separated by two spaces, a dashed rule under the header. */
export function formatTable(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const widths = columns.map((c, i) => Math.max(c.title.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, i) => (columns[i].align === "right" ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(columns.map((c) => c.title)), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}

/** Bytes with a binary unit, 3 significant-ish digits: 96.0 KiB, 1.50 MiB, 176 MiB. */
export function formatBytesShort(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  if (u === 0) return `${v} B`;
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[u]}`;
}

export function formatSigned(x: number, digits: number): string {
  if (!Number.isFinite(x)) return "n/a";
  const s = Math.abs(x).toFixed(digits);
  return `${x < 0 && Number(s) !== 0 ? "-" : "+"}${s}`;
}

function formatRate(x: number): string {
  return Number.isFinite(x) ? x.toFixed(x >= 100 ? 0 : 1) : "n/a";
}

function formatKld(x: number): string {
  return Number.isFinite(x) ? x.toExponential(2) : "n/a";
}

/**
 * The comparison table: one row per configuration (the f32 baseline first), the Pareto front of
 * (bytes per token, mean KLD) marked with '*'.
 */
export function compareTable(result: CompareResult): string {
  const front = paretoFront(result.rows);
  const contexts = result.memoryContexts;
  const memTitle = (n: number, i: number): string => (i === contexts.length - 1 ? `@${n} (trained)` : `@${n}`);
  const columns: Column[] = [
    { title: "config", align: "left" },
    { title: "K", align: "left" },
    { title: "V", align: "left" },
    { title: "B/token", align: "right" },
    ...contexts.map((n, i) => ({ title: memTitle(n, i), align: "right" as const })),
    { title: "saved vs F16", align: "right" },
    { title: "pp t/s", align: "right" },
    { title: "tg t/s", align: "right" },
    { title: "ppl", align: "right" },
    { title: "Δppl %", align: "right" },
    { title: "mean KLD", align: "right" },
    { title: "same top %", align: "right" },
  ];
  const b = result.baseline;
  const baseRow = [
    "F32 (base)",
    b.kv.k,
    b.kv.v,
    "",
    ...contexts.map(() => ""),
    "",
    formatRate(b.ppTps),
    formatRate(b.tgTps),
    `${b.ppl.toFixed(4)} ± ${b.pplStderr.toFixed(4)}`,
    "",
    "",
    "",
  ];
  const rows = result.rows.map((r: CompareRow) => [
    `${r.config}${front.has(r.config) ? " *" : ""}${r.group === "config" ? "" : r.group === "sensitivity" ? " (s)" : " (sweep)"}`,
    r.k,
    r.v,
    String(r.kvBytesPerToken),
    ...contexts.map((n) => formatBytesShort(r.kvBytesAt.get(n) ?? NaN)),
    `${r.savedVsF16Pct.toFixed(1)}%`,
    formatRate(r.ppTps),
    formatRate(r.tgTps),
    r.ppl.toFixed(4),
    `${formatSigned(r.deltaPplPct, 3)} ± ${r.deltaPplPctStderr.toFixed(3)}`,
    formatKld(r.kldMean),
    (100 * r.top1Agree).toFixed(1),
  ]);
  return formatTable(columns, [baseRow, ...rows]);
}

/** The legend printed under the comparison table. */
export function compareLegend(result: CompareResult): string[] {
  return [
    `${result.nChunks} chunks of ${result.ctx} tokens, ${result.nScored} positions scored (second halves, llama-perplexity's method); ` +
      `KV rotation ${result.rotation ? "on" : "off"}.`,
    "Δppl % and mean KLD are against the f32 cache (F32 (base)); same top %: positions whose most likely token matches it.",
    "* on the Pareto front of (bytes per token, mean KLD); (s) keys-vs-values sensitivity rows; (sweep) --sweep rows.",
    `Speed: fastest of ${result.speed.reps ?? 3} short runs each (${result.speed.promptTokens}-token prompt, then ${result.speed.genTokens} single tokens); ` +
      "indicative only (kvsplit bench measures properly).",
  ];
}
