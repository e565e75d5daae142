/**
 * Per-layer K/V schedules (`--kv-schedule FILE.json`, `kvsplit tune`'s output): the key and value format of every
 * layer, so sensitive layers keep more bits and the rest fewer (KVTuner's idea; llama.cpp has one type for all
 * layers). The file:
 *
 *   {
 *     "kvsplit_schedule": 1,
 *     "layers": [ { "k": "q8_0", "v": "q4_0" }, { "k": "f16", "v": "q8_0", "window": 32 }, ... ],   one per model layer
 *     "window": 16, "sinks": 4,                                        optional: exact rows (f16) of every layer
 *     "exact_format": "q8_0",                                          optional: those rows in q8_0 (default "f16")
 *     "model": "...", "expected": { ... }, "note": "..."                optional, informational
 *   }
 *
 * A layer entry's own "window" / "sinks" override the top-level ones for that layer (0 turns them off there);
 * "k_layout": "channel" stores its keys per channel in groups of 32 positions (KvPair.kLayout; needs a window ≥ 32).
 * Format names are THE format table's (any case). A layer entry may carry "layer": its index, checked. Unknown keys
 * are errors, so a file using a feature this version lacks is refused rather than half-applied.
 */
import { readFileSync } from "node:fs";
import type { KvPair } from "../api.js";
import { getKvFormat } from "../formats/table.js";
import type { ExactFormatName, KvFormatName } from "../formats/types.js";

export const SCHEDULE_VERSION = 1;

export interface KvSchedule {
  /** How reports name it: "schedule:<file name>". */
  name: string;
  /** The file it was read from. */
  file: string;
  /** (nLayers) K/V formats per layer. */
  layers: KvPair[];
  /** "window": the exact recent window every layer keeps (positions), when the file gives one. */
  window?: number;
  /** "sinks": the exact first positions every layer keeps, when the file gives them. */
  sinks?: number;
  /** "exact_format": "q8_0" keeps the windows' and sinks' rows in q8_0 (absent or "f16": f16). */
  exactFormat?: "q8_0";
  /** Optional extras of the file, kept as read (tune's expectations, the model it was tuned on). */
  extras: Record<string, unknown>;
}

/** A schedule file that cannot be used: names the file and what is wrong. */
export class KvScheduleError extends Error {
  constructor(readonly file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = "KvScheduleError";
  }
}

const TOP_KEYS = new Set(["kvsplit_schedule", "layers", "window", "sinks", "exact_format", "model", "expected", "note", "tuned_on"]);
const LAYER_KEYS = new Set(["layer", "k", "v", "window", "sinks", "k_layout"]);

/** Parse schedule JSON text; `file` names it in errors and in the schedule's name. */
export function parseKvSchedule(text: string, file: string): KvSchedule {
  const fail = (detail: string): never => {
    throw new KvScheduleError(file, detail);
  };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    fail(`not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) return fail("a K/V schedule must be a JSON object with a \"layers\" array");
  const obj = json as Record<string, unknown>;
  for (const key of Object.keys(obj)) {
    if (!TOP_KEYS.has(key)) fail(`unknown key "${key}" (a schedule has ${[...TOP_KEYS].map((k) => `"${k}"`).join(", ")})`);
  }
  if (obj.kvsplit_schedule !== undefined && obj.kvsplit_schedule !== SCHEDULE_VERSION) {
    fail(`"kvsplit_schedule": ${JSON.stringify(obj.kvsplit_schedule)} is not a version this kvsplit reads (${SCHEDULE_VERSION})`);
  }
  const entries = obj.layers;
  if (!Array.isArray(entries) || entries.length === 0) return fail("\"layers\" must be a non-empty array with one {\"k\", \"v\"} entry per model layer");
  const layers = entries.map((entry, i): KvPair => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) return fail(`layer ${i}: expected an object like {"k": "q8_0", "v": "q4_0"}, got ${JSON.stringify(entry)}`);
    const e = entry as Record<string, unknown>;
    for (const key of Object.keys(e)) {
      if (!LAYER_KEYS.has(key)) fail(`layer ${i}: unknown key "${key}" (a layer has "k", "v" and optionally "layer", "window", "sinks", "k_layout")`);
    }
    if (e.layer !== undefined && e.layer !== i) fail(`entry ${i} says "layer": ${JSON.stringify(e.layer)}; entries must be in layer order 0, 1, 2, ...`);
    const pair: KvPair = { k: formatAt(e.k, `layer ${i} "k"`, fail), v: formatAt(e.v, `layer ${i} "v"`, fail) };
    for (const key of ["window", "sinks"] as const) {
      if (e[key] === undefined) continue;
      if (!Number.isSafeInteger(e[key]) || (e[key] as number) < 0) fail(`layer ${i} "${key}" must be a whole number of positions (0 or more), got ${JSON.stringify(e[key])}`);
      pair[key] = e[key] as number;
    }
    if (e.k_layout !== undefined) {
      if (e.k_layout !== "channel") fail(`layer ${i} "k_layout" must be "channel" (keys per channel), got ${JSON.stringify(e.k_layout)}`);
      pair.kLayout = "channel";
    }
    return pair;
  });
  for (const key of ["window", "sinks"] as const) {
    if (obj[key] !== undefined && (!Number.isSafeInteger(obj[key]) || (obj[key] as number) < 0)) {
      fail(`"${key}" must be a whole number of positions (0 or more), got ${JSON.stringify(obj[key])}`);
    }
  }
  if (obj.exact_format !== undefined && obj.exact_format !== "f16" && obj.exact_format !== "q8_0") {
    fail(`"exact_format" must be "f16" or "q8_0" (the format of the windows' and sinks' rows), got ${JSON.stringify(obj.exact_format)}`);
  }
  const window = obj.window as number | undefined;
  const sinks = obj.sinks as number | undefined;
  const q8 = obj.exact_format === "q8_0";
  const extras = Object.fromEntries(Object.entries(obj).filter(([k]) => !["layers", "kvsplit_schedule", "window", "sinks", "exact_format"].includes(k)));
  return {
    name: `schedule:${file.split(/[\\/]/).pop()}`, file, layers, extras,
    ...(window ? { window } : {}), ...(sinks ? { sinks } : {}), ...(q8 ? { exactFormat: "q8_0" as const } : {}),
  };
}

function formatAt(value: unknown, where: string, fail: (detail: string) => never): KvFormatName {
  if (typeof value !== "string") return fail(`${where} must be a K/V format name such as "q8_0", got ${JSON.stringify(value)}`);
  try {
    return getKvFormat(value.trim()).name as KvFormatName;
  } catch (err) {
    return fail(`${where}: ${(err as Error).message}`);
  }
}

/** Read and parse a schedule file (KvScheduleError when missing or malformed). */
export function readKvSchedule(file: string): KvSchedule {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new KvScheduleError(file, code === "ENOENT" ? "K/V schedule file not found" : `cannot read the K/V schedule (${(err as Error).message})`);
  }
  return parseKvSchedule(text, file);
}

/** A schedule must have exactly one entry per layer of the model it is used with; `file` names it in the error. */
export function checkScheduleLayers(layers: readonly KvPair[], nLayers: number, file: string): void {
  if (layers.length !== nLayers) {
    throw new KvScheduleError(file, `the schedule has ${layers.length} layers but the model has ${nLayers}; give one {"k", "v"} entry per layer`);
  }
}

/** The schedule file's JSON text for these layers (a window and its rows' format, extras), as parseKvSchedule reads it. */
export function kvScheduleJson(layers: readonly KvPair[], extras: Record<string, unknown> = {}, window = 0, exactFormat: ExactFormatName = "f16"): string {
  const obj = {
    kvsplit_schedule: SCHEDULE_VERSION, ...extras, ...(window > 0 ? { window } : {}), ...(exactFormat !== "f16" ? { exact_format: exactFormat } : {}),
    layers: layers.map((l, i) => ({
      layer: i, k: l.k, v: l.v, ...(l.window !== undefined ? { window: l.window } : {}), ...(l.sinks !== undefined ? { sinks: l.sinks } : {}),
      ...(l.kLayout ? { k_layout: l.kLayout } : {}),
    })),
  };
  // one line per layer entry
  return JSON.stringify(obj, null, 2).replace(/\{\n\s+"layer": (\d+),((?:\n\s+"[a-z]+": [^,\n]+,?)+)\n\s+\}/g, (_, layer: string, rest: string) => `{ "layer": ${layer}, ${rest.trim().split(/,?\n\s+/).join(", ")} }`) + "\n";
}
