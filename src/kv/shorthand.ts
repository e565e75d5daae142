/**
 * K/V cache configurations written the way people say them: `F16`, `K8V4` (q8_0 keys, q4_0 values),
 * or as explicit format pairs `q8_0/q4_0` and `k=q8_0,v=q4_0`. Every format name is checked against THE format
 * table (formats/table.ts), so a format added there is accepted here without a change.
 */
import type { KvPair } from "../api.js";
import { getKvFormat, isOwnFormat } from "../formats/table.js";
import { KV_FORMAT_NAMES, type KvFormatName } from "../formats/types.js";
import { KEY_GROUP } from "./cache.js";
import { readKvSchedule, type KvSchedule } from "./schedule.js";

export interface KvConfig {
  /** Canonical name: the shorthand where one exists (`K8V4`), else `k/v` (`q5_1/iq4_nl`); `schedule:FILE` for schedules. */
  name: string;
  /** The key / value format of every layer, or "mixed" where a schedule's layers differ. */
  k: KvFormatName | "mixed";
  v: KvFormatName | "mixed";
  /** A per-layer schedule (kv/schedule.ts): (nLayers) pairs; absent for one pair on every layer. */
  layers?: readonly KvPair[];
  /** The schedule's file, for errors. */
  scheduleFile?: string;
  /** Exact recent window (`+w16`): each query's last `window` positions in f16 (SessionOptions.kvWindow). */
  window?: number;
  /** Exact sinks (`+s4`): positions [0, sinks) in f16 for every query (SessionOptions.kvSinks). */
  sinks?: number;
  /** Keys per channel (`+c`, KvPair.kLayout "channel"): needs a window of at least 32, which `+c` alone gives. */
  keysPerChannel?: boolean;
  /** The window's and sinks' rows in q8_0 instead of f16 (`+q8`, SessionOptions.kvExactFormat); absent: f16. */
  exactFormat?: "q8_0";
}

/**
 * `K4V4+c+s4+w16`, `K2V2+w44+q8`: keys per channel, exact sinks, an exact recent window and q8_0 rows for them,
 * spelled after a config (any, any order).
 */
const EXACT_SUFFIXES = /(?:\+\s*(?:[sw]\s*\d+|c|q8)\s*)+$/i;

/**
 * The config with `exact.sinks` exact sinks and an exact window of `exact.window` positions (0 or absent: none),
 * named `NAME+sS+wW` (`NAME+c+sS+wW` with keys per channel, `NAME+sS+wW+q8` with q8_0 rows).
 */
export function withExact(config: KvConfig, exact: { sinks?: number; window?: number }): KvConfig {
  const base = config.name.replace(EXACT_SUFFIXES, "");
  const { window: _w, sinks: _s, ...rest } = config;
  const sinks = exact.sinks ?? 0;
  const window = exact.window ?? 0;
  const name = `${base}${config.keysPerChannel ? "+c" : ""}${sinks ? `+s${sinks}` : ""}${window ? `+w${window}` : ""}${config.exactFormat ? "+q8" : ""}`;
  return { ...rest, name, ...(sinks ? { sinks } : {}), ...(window ? { window } : {}) };
}

/** The session options of a config's exact rows: `{ kvWindow, kvSinks, kvExactFormat }` (absent ones left out). */
export function exactOptions(config: KvConfig): { kvWindow?: number; kvSinks?: number; kvExactFormat?: "q8_0" } {
  return {
    ...(config.window ? { kvWindow: config.window } : {}),
    ...(config.sinks ? { kvSinks: config.sinks } : {}),
    ...(config.exactFormat ? { kvExactFormat: config.exactFormat } : {}),
  };
}

/** The config with an exact recent window of `window` positions (0: none), its sinks kept. */
export function withWindow(config: KvConfig, window: number): KvConfig {
  return withExact(config, { sinks: config.sinks, window });
}

/** Whether llama.cpp cannot run the config: a per-layer schedule, an exact window or sinks, or one of kvsplit's own formats. */
export function isKvsplitOnly(config: KvConfig): boolean {
  if (config.layers !== undefined || (config.window ?? 0) > 0 || (config.sinks ?? 0) > 0 || config.keysPerChannel) return true;
  return [config.k, config.v].some((f) => f !== "mixed" && isOwnFormat(getKvFormat(f)));
}

/** What a session takes: the one pair, or the schedule's pairs per layer. */
export function kvPairsOf(config: KvConfig): KvPair | readonly KvPair[] {
  return config.layers ?? { k: config.k as KvFormatName, v: config.v as KvFormatName, ...(config.keysPerChannel ? { kLayout: "channel" as const } : {}) };
}

/** The config of a schedule: its name, k / v where every layer agrees ("mixed" otherwise), its layers. */
export function configOfSchedule(schedule: KvSchedule): KvConfig {
  const same = (side: "k" | "v") => (schedule.layers.every((l) => l[side] === schedule.layers[0]![side]) ? schedule.layers[0]![side] : "mixed");
  const config: KvConfig = {
    name: schedule.name, k: same("k"), v: same("v"), layers: schedule.layers, scheduleFile: schedule.file,
    ...(schedule.exactFormat ? { exactFormat: schedule.exactFormat } : {}),
  };
  return schedule.window || schedule.sinks ? withExact(config, { sinks: schedule.sinks, window: schedule.window }) : config;
}

/** Bits in a `KxVy` shorthand and the format each stands for. */
const SHORTHAND_BITS: ReadonlyArray<readonly [number, KvFormatName]> = [
  [32, "f32"],
  [16, "f16"],
  [8, "q8_0"],
  [5, "q5_0"],
  [4, "q4_0"],
  [3, "iq3_nl"],
  [2, "iq2_nl"],
];
const FORMAT_BY_BITS = new Map<number, KvFormatName>(SHORTHAND_BITS);
const BITS_BY_FORMAT = new Map<KvFormatName, number>(SHORTHAND_BITS.map(([bits, name]) => [name, bits]));

/** The K and V formats when no flag chooses them (llama.cpp's default too). */
export const DEFAULT_KV: KvConfig = { name: "F16", k: "f16", v: "f16" };

export const ALLOWED_KV_CONFIGS_TEXT =
  `F16, F32, KxVy with x,y in {${SHORTHAND_BITS.map(([b]) => b).join(",")}} ` +
  `(${SHORTHAND_BITS.map(([b, n]) => `${b}=${n}`).join(" ")}; e.g. K8V4), ` +
  `or a K/V pair 'q8_0/q4_0' or 'k=q8_0,v=q4_0' of the formats ${KV_FORMAT_NAMES.join(", ")}; ` +
  `'+wN' after any of them keeps each query's last N positions exact (f16) and '+sN' the first N, e.g. K4V4+s4+w16, ` +
  `'+q8' keeps those rows in q8_0 instead, e.g. iq2_e8/iq2_e8+w44+q8; ` +
  `'+c' stores keys per channel in groups of 32 positions (with a window of 32 unless one is given), e.g. K4V4+c`;

/** A K/V configuration that is not one of the allowed spellings, or names a format the KV cache cannot hold. */
export class KvConfigError extends Error {
  constructor(readonly spec: string, detail?: string) {
    super(`unknown KV cache config '${spec}'${detail ? ` (${detail})` : ""}; allowed: ${ALLOWED_KV_CONFIGS_TEXT}`);
    this.name = "KvConfigError";
  }
}

/** Two flags that both choose the K/V formats (`--kv`, `-ctk`/`-ctv`, `--kv-schedule`): only one may be given. */
export class KvFlagConflictError extends Error {
  constructor(readonly kvFlag: string, readonly typeFlag: string) {
    super(`'${kvFlag}' conflicts with '${typeFlag}': choose the K/V formats with one of --kv, -ctk/-ctv, --kvq/--kvq-key/--kvq-val or --kv-schedule`);
    this.name = "KvFlagConflictError";
  }
}

/** The KV format called `name` (any case), or a KvConfigError about `spec` naming the format. */
function kvFormatIn(spec: string, name: string): KvFormatName {
  const trimmed = name.trim();
  try {
    return getKvFormat(trimmed).name as KvFormatName;
  } catch {
    throw new KvConfigError(spec, `'${trimmed}' is not a KV cache format`);
  }
}

/** The canonical name for a K/V pair: `F16`, `F32`, `K8V4`, ... where a shorthand exists, else `k/v`. */
export function kvConfigName(k: KvFormatName, v: KvFormatName): string {
  if (k === v && k === "f16") return "F16";
  if (k === v && k === "f32") return "F32";
  const kBits = BITS_BY_FORMAT.get(k);
  const vBits = BITS_BY_FORMAT.get(v);
  if (kBits !== undefined && vBits !== undefined) return `K${kBits}V${vBits}`;
  return `${k}/${v}`;
}

function config(k: KvFormatName, v: KvFormatName): KvConfig {
  return { name: kvConfigName(k, v), k, v };
}

/**
 * Parse one K/V configuration: `F16`, `F32`, `KxVy` (case-insensitive), `q8_0/q4_0`, `k=q8_0,v=q4_0`,
 * or one format name for both sides (`q8_0`). Throws KvConfigError naming the spec and the allowed spellings.
 */
export function parseKvConfig(spec: string): KvConfig {
  const suffixes = EXACT_SUFFIXES.exec(spec);
  if (suffixes) {
    const exact: { sinks?: number; window?: number } = {};
    const channels = /\+\s*c(?![a-z\d])/i.test(suffixes[0]);
    const q8 = /\+\s*q8/i.test(suffixes[0]);
    for (const m of suffixes[0].matchAll(/\+\s*([sw])\s*(\d+)/gi)) {
      const which = m[1].toLowerCase() === "s" ? "sinks" : "window";
      const n = Number(m[2]);
      if (!Number.isSafeInteger(n) || n < 1) throw new KvConfigError(spec, `'+${m[1]}${m[2]}': ${which} must be at least 1`);
      if (exact[which] !== undefined) throw new KvConfigError(spec, `${which} given twice`);
      exact[which] = n;
    }
    const parsed = parseKvConfig(spec.slice(0, suffixes.index));
    if (q8 && channels) throw new KvConfigError(spec, `'+c' (keys per channel) quantizes its groups from f16 window rows: it cannot take '+q8'`);
    if (q8 && exact.window === undefined && exact.sinks === undefined) throw new KvConfigError(spec, `'+q8' (exact rows in q8_0) needs a window (+wN) or sinks (+sN)`);
    const base: KvConfig = q8 ? { ...parsed, exactFormat: "q8_0" } : parsed;
    if (!channels) return withExact(base, exact);
    if (base.k === "f32" || base.k === "f16" || base.k === "bf16") throw new KvConfigError(spec, `'+c' (keys per channel) needs a block-quantized K format, not ${base.k}`);
    if (exact.window !== undefined && exact.window < KEY_GROUP) throw new KvConfigError(spec, `'+c' (keys per channel) needs a window of at least ${KEY_GROUP} positions`);
    return withExact({ ...base, keysPerChannel: true }, { ...exact, window: exact.window ?? KEY_GROUP });
  }
  const text = spec.trim();
  const upper = text.toUpperCase();
  if (upper === "F16") return config("f16", "f16");
  if (upper === "F32") return config("f32", "f32");

  const shorthand = /^K(\d+)V(\d+)$/.exec(upper);
  if (shorthand) {
    const k = FORMAT_BY_BITS.get(Number(shorthand[1]));
    const v = FORMAT_BY_BITS.get(Number(shorthand[2]));
    if (!k || !v) {
      const bad = !k ? `K${shorthand[1]}` : `V${shorthand[2]}`;
      throw new KvConfigError(spec, `${bad}: no format of that many bits`);
    }
    return config(k, v);
  }

  const slash = /^([^/]+)\/([^/]+)$/.exec(text);
  if (slash) return config(kvFormatIn(spec, slash[1]!), kvFormatIn(spec, slash[2]!));

  const named = /^\s*k\s*=\s*([^,]+?)\s*,\s*v\s*=\s*([^,]+?)\s*$/i.exec(text);
  if (named) return config(kvFormatIn(spec, named[1]!), kvFormatIn(spec, named[2]!));
  const namedReversed = /^\s*v\s*=\s*([^,]+?)\s*,\s*k\s*=\s*([^,]+?)\s*$/i.exec(text);
  if (namedReversed) return config(kvFormatIn(spec, namedReversed[2]!), kvFormatIn(spec, namedReversed[1]!));

  if (text !== "" && !/[,=/]/.test(text)) {
    const both = kvFormatIn(spec, text);
    return config(both, both);
  }
  throw new KvConfigError(spec);
}

/**
 * Named lists usable as an entry of a config list: llama.cpp's usual pairs, kvsplit's exact-window configs, its own
 * low-bit codebook formats (iq3_nl = K3/V3, iq2_nl = K2/V2), alone and with exact windows and sinks, and their
 * one-byte-scale kin with windows in q8_0.
 */
export const KV_CONFIG_PRESETS: Readonly<Record<string, string>> = {
  "llama.cpp": "F16,K8V8,K8V4,K4V8,K4V4",
  windows: "K4V4+w4,K4V4+w16,iq4_nl/iq4_nl+w16,K5V5+w16,K8V4+w16",
  lowbit: "K8V3,K4V3,K3V3,K3V2,K2V2,iq4_nl/iq3_nl+w16,K3V3+w16,K3V3+s4+w16,K3V2+w16,K2V2+w16",
  // one-byte scales (iq3_e8 3.25 bits, iq2_e8 2.25) and windows kept in q8_0: the most quality per bit
  e8: "iq3_e8/iq3_e8,iq2_e8/iq2_e8,iq3_e8/iq3_e8+w16,iq3_e8/iq3_e8+w32+q8,iq3_e8/iq3_e8+w44+q8,iq2_e8/iq2_e8+w44+q8",
};

/**
 * Parse a comma-separated list of configurations: `F16,K8V8,K8V4,q5_1/q5_1`; a preset name (KV_CONFIG_PRESETS)
 * stands for its list. A `k=...,v=...` pair inside a list keeps its comma (`F16,k=q8_0,v=q4_0` is two configs).
 */
export function parseKvConfigList(list: string): KvConfig[] {
  const parts = list.split(",").map((p) => p.trim()).flatMap((p) => (KV_CONFIG_PRESETS[p] ?? p).split(","));
  const configs: KvConfig[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i]!;
    if (part === "") throw new KvConfigError(list, "empty entry in the list");
    const next = parts[i + 1];
    const isKeyed = /^[kv]\s*=/i.test(part);
    if (isKeyed && next !== undefined && /^[kv]\s*=/i.test(next)) {
      configs.push(parseKvConfig(`${part},${next}`));
      i++;
    } else {
      configs.push(parseKvConfig(part));
    }
  }
  return configs;
}

export interface KvFlags {
  /** `--kv`: one configuration in any spelling parseKvConfig accepts. */
  kv?: string;
  /** `-ctk` / `--cache-type-k`: the key format name. */
  ctk?: string;
  /** `-ctv` / `--cache-type-v`: the value format name. */
  ctv?: string;
  /** `--kv-schedule`: a per-layer schedule file (kv/schedule.ts). */
  schedule?: string;
  /** `--kv-window`: an exact recent window for whichever config the other flags give. */
  window?: number;
  /** `--kv-sinks`: exact sinks for whichever config the other flags give. */
  sinks?: number;
  /** The original KVSplit's `--kvq BITS` (both sides), `--kvq-key BITS`, `--kvq-val BITS` (these override --kvq). */
  kvq?: string;
  kvqKey?: string;
  kvqVal?: string;
}

/** The original KVSplit's bit widths: 16 → f16, 8 → q8_0, 4 → q4_0. */
const KVQ_BITS: Readonly<Record<string, KvFormatName>> = { "16": "f16", "8": "q8_0", "4": "q4_0" };

function kvqFormat(flag: string, bits: string): KvFormatName {
  const format = KVQ_BITS[bits.trim()];
  if (format === undefined) throw new KvConfigError(`${flag} ${bits}`, "the original KVSplit's bit widths: 16 (f16), 8 (q8_0), 4 (q4_0)");
  return format;
}

/** `--kvq*` flags as -ctk / -ctv values, refusing them beside --kv, -ctk, -ctv or --kv-schedule. */
function kvqAsCacheTypes(flags: KvFlags): KvFlags {
  const given = [
    flags.kvq !== undefined ? `--kvq ${flags.kvq}` : undefined,
    flags.kvqKey !== undefined ? `--kvq-key ${flags.kvqKey}` : undefined,
    flags.kvqVal !== undefined ? `--kvq-val ${flags.kvqVal}` : undefined,
  ].filter((x) => x !== undefined);
  if (given.length === 0) return flags;
  const other =
    flags.kv !== undefined ? `--kv ${flags.kv}` : flags.ctk !== undefined ? `-ctk ${flags.ctk}` : flags.ctv !== undefined ? `-ctv ${flags.ctv}` :
    flags.schedule !== undefined ? `--kv-schedule ${flags.schedule}` : undefined;
  if (other !== undefined) throw new KvFlagConflictError(given[0]!, other);
  const k = flags.kvqKey !== undefined ? kvqFormat("--kvq-key", flags.kvqKey) : flags.kvq !== undefined ? kvqFormat("--kvq", flags.kvq) : undefined;
  const v = flags.kvqVal !== undefined ? kvqFormat("--kvq-val", flags.kvqVal) : flags.kvq !== undefined ? kvqFormat("--kvq", flags.kvq) : undefined;
  return { ...flags, ctk: k, ctv: v, kvq: undefined, kvqKey: undefined, kvqVal: undefined };
}

/** Resolve `--kv`, `-ctk/-ctv` or `--kv-schedule` (exclusive; each side defaults to f16) into one configuration. */
export function resolveKvFlags(given: KvFlags): KvConfig {
  const flags = kvqAsCacheTypes(given);
  const config = resolveKvFormats(flags);
  if (flags.window !== undefined && config.window !== undefined && config.window !== flags.window) {
    throw new KvFlagConflictError(`--kv-window ${flags.window}`, `the window +w${config.window} of ${config.name}`);
  }
  if (flags.sinks !== undefined && config.sinks !== undefined && config.sinks !== flags.sinks) {
    throw new KvFlagConflictError(`--kv-sinks ${flags.sinks}`, `the sinks +s${config.sinks} of ${config.name}`);
  }
  if (flags.window === undefined && flags.sinks === undefined) return config;
  return withExact(config, { sinks: flags.sinks ?? config.sinks, window: flags.window ?? config.window });
}

function resolveKvFormats(flags: KvFlags): KvConfig {
  const { kv, ctk, ctv, schedule } = flags;
  if (schedule !== undefined) {
    const other = kv !== undefined ? `--kv ${kv}` : ctk !== undefined ? `-ctk ${ctk}` : ctv !== undefined ? `-ctv ${ctv}` : undefined;
    if (other !== undefined) throw new KvFlagConflictError(`--kv-schedule ${schedule}`, other);
    return configOfSchedule(readKvSchedule(schedule));
  }
  if (kv !== undefined && (ctk !== undefined || ctv !== undefined)) {
    const other = ctk !== undefined ? `-ctk ${ctk}` : `-ctv ${ctv}`;
    throw new KvFlagConflictError(`--kv ${kv}`, other);
  }
  if (kv !== undefined) return parseKvConfig(kv);
  const k = ctk !== undefined ? kvFormatIn(`-ctk ${ctk}`, ctk) : "f16";
  const v = ctv !== undefined ? kvFormatIn(`-ctv ${ctv}`, ctv) : "f16";
  return config(k, v);
}
