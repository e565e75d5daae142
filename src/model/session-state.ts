/**
 * Saved KV state: a session's cache written to a file as it is stored, and read back into a session of the same
 * model with the same K/V formats, so a conversation (or a server slot) continues without evaluating its tokens again.
 *
 * File layout (little-endian):
 *   bytes 0..7    "KVSSTATE"
 *   u32           version (2; a version-1 file loads unless a layer holds iq3_nl or iq3_e8, whose blocks then
 *                 kept index bit 2 of value v in bit v of qh, where version 2 keeps it in byte v mod 4, bit v div 4)
 *   u32           H: header bytes
 *   H bytes       UTF-8 JSON header: { model: { fingerprint, name, nLayers, nVocab }, rotation, kvWindow, kvSinks,
 *                 kvExactFormat, layers: [{ k, v, kLayout?, window?, sinks? }], position, tokens,
 *                 blobs: [{ layer, bytes, ringEnd }] }
 *   then          each layer's blob in order: what KvCache.exportLayer gives for positions [0, position) (packed K
 *                 and V per kv head, the sinks' and the window's f16 or q8_0 rows)
 * The state holds the cache's own bytes, so a K8V4 state is about 0.4 of an F16 one, as the caches are.
 * The model's fingerprint is a SHA-256 of its shape, tensor table and the first and last 64 KiB of its tensor data:
 * a state is refused by another model, even one of the same shape.
 */
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync } from "node:fs";
import type { KvPair } from "../api.js";
import type { ExactFormatName } from "../formats/types.js";
import { writeFileAtomic } from "../report/atomic.js";
import type { Model } from "./model.js";
import type { Session } from "./session.js";

const MAGIC = "KVSSTATE";
const VERSION = 2;
/** The 3-bit codebook formats, whose qh layout changed from version 1 to 2. */
const QH_LAYOUT_CHANGED = new Set(["iq3_nl", "iq3_e8"]);
const SAMPLE_BYTES = 64 * 1024;

/** A state file that is not one, is damaged, or belongs to another model or other K/V formats. */
export class StateFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = "StateFileError";
  }
}

interface StateHeader {
  model: { fingerprint: string; name: string; nLayers: number; nVocab: number };
  rotation: boolean;
  kvWindow: number;
  kvSinks: number;
  /** The window's and sinks' row format; absent in files from before it existed (f16). */
  kvExactFormat?: ExactFormatName;
  layers: KvPair[];
  position: number;
  tokens: number[];
  blobs: { layer: number; bytes: number; ringEnd: number }[];
}

const fingerprints = new WeakMap<Model, string>();

/** The model's identity: its shape, tensor table and samples of its tensor data (read once from the file). */
export function modelFingerprint(model: Model): string {
  const known = fingerprints.get(model);
  if (known) return known;
  const g = model.gguf;
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ config: model.config, fileSize: g.fileSize, tensors: g.tensors.map((t) => [t.name, t.ggmlType, t.shape, t.offset]) }));
  const fd = openSync(model.path, "r");
  try {
    const dataBytes = g.fileSize - g.dataOffset;
    const n = Math.min(SAMPLE_BYTES, dataBytes);
    const sample = Buffer.alloc(n);
    readSync(fd, sample, 0, n, g.dataOffset);
    hash.update(sample);
    readSync(fd, sample, 0, n, g.fileSize - n);
    hash.update(sample);
  } finally {
    closeSync(fd);
  }
  const fingerprint = hash.digest("hex");
  fingerprints.set(model, fingerprint);
  return fingerprint;
}

const layerSpec = (p: KvPair): KvPair => ({ k: p.k, v: p.v, ...(p.kLayout ? { kLayout: p.kLayout } : {}), ...(p.window !== undefined ? { window: p.window } : {}), ...(p.sinks !== undefined ? { sinks: p.sinks } : {}) });

export function saveSessionState(session: Session, model: Model, file: string): number {
  const n = session.position;
  const blobs = Array.from({ length: model.config.nLayers }, (_, layer) => ({ layer, ...session.cache.exportLayer(layer, n) }));
  const header: StateHeader = {
    model: { fingerprint: modelFingerprint(model), name: model.gguf.name, nLayers: model.config.nLayers, nVocab: model.config.nVocab },
    rotation: session.rotation,
    kvWindow: session.kvWindow,
    kvSinks: session.kvSinks,
    kvExactFormat: session.kvExactFormat,
    layers: session.kv.map(layerSpec),
    position: n,
    tokens: session.tokens,
    blobs: blobs.map((b) => ({ layer: b.layer, bytes: b.bytes.length, ringEnd: b.ringEnd })),
  };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const head = Buffer.alloc(16);
  head.write(MAGIC, 0, "latin1");
  head.writeUInt32LE(VERSION, 8);
  head.writeUInt32LE(json.length, 12);
  const parts = [head, json, ...blobs.map((b) => b.bytes)];
  writeFileAtomic(file, parts);
  return parts.reduce((sum, p) => sum + p.length, 0);
}

function parseHeader(file: string, data: Buffer): { header: StateHeader; body: number } {
  if (data.length < 16 || data.toString("latin1", 0, 8) !== MAGIC) throw new StateFileError(file, "not a kvsplit state file (no KVSSTATE magic)");
  const version = data.readUInt32LE(8);
  if (version !== VERSION && version !== 1) throw new StateFileError(file, `state file version ${version}; this kvsplit reads versions 1 and ${VERSION}`);
  const length = data.readUInt32LE(12);
  if (16 + length > data.length) throw new StateFileError(file, "the file is truncated (its header runs past the end)");
  let header: StateHeader;
  try {
    header = JSON.parse(data.toString("utf8", 16, 16 + length)) as StateHeader;
  } catch {
    throw new StateFileError(file, "the header is not valid JSON");
  }
  const old = version === 1 && Array.isArray(header.layers) ? header.layers.findIndex((l) => QH_LAYOUT_CHANGED.has(l?.k) || QH_LAYOUT_CHANGED.has(l?.v)) : -1;
  if (old >= 0) {
    throw new StateFileError(file, `state file version 1 holds ${JSON.stringify(header.layers[old])} blocks (layer ${old}) in iq3's earlier bit layout; save the state again with this kvsplit`);
  }
  return { header, body: 16 + length };
}

export function loadSessionState(session: Session, model: Model, file: string): { position: number; tokens: number[] } {
  let data: Buffer;
  try {
    data = readFileSync(file);
  } catch (e) {
    throw new StateFileError(file, `cannot read: ${(e as Error).message}`);
  }
  const { header: h, body } = parseHeader(file, data);
  if (h.model?.fingerprint !== modelFingerprint(model)) {
    throw new StateFileError(file, `saved from another model (${h.model?.name ?? "unknown"}); this session's model is ${model.gguf.name}`);
  }
  const mine = session.kv.map(layerSpec);
  const differs = mine.findIndex((p, i) => JSON.stringify(p) !== JSON.stringify(h.layers?.[i]));
  if (differs >= 0 || h.layers.length !== mine.length) {
    const layer = differs >= 0 ? differs : 0;
    throw new StateFileError(file, `saved with other K/V formats: layer ${layer} is ${JSON.stringify(h.layers?.[layer])} there, ${JSON.stringify(mine[layer])} here`);
  }
  const exactFormat = h.kvExactFormat ?? "f16";
  if (h.rotation !== session.rotation || h.kvWindow !== session.kvWindow || h.kvSinks !== session.kvSinks || exactFormat !== session.kvExactFormat) {
    throw new StateFileError(
      file,
      `saved with rotation ${h.rotation}, window ${h.kvWindow}, sinks ${h.kvSinks} (${exactFormat} rows); ` +
        `this session has ${session.rotation}, ${session.kvWindow}, ${session.kvSinks} (${session.kvExactFormat} rows)`,
    );
  }
  if (!Number.isInteger(h.position) || h.position < 0 || h.position > session.contextSize) {
    throw new StateFileError(file, `it holds ${h.position} tokens, more than this session's context (${session.contextSize})`);
  }
  if (!Array.isArray(h.tokens) || h.tokens.length !== h.position || !h.tokens.every((t) => Number.isInteger(t) && t >= 0 && t < model.config.nVocab)) {
    throw new StateFileError(file, "its token ids do not match its position or the vocabulary");
  }
  const total = h.blobs.reduce((sum, b) => sum + b.bytes, 0);
  if (body + total !== data.length) throw new StateFileError(file, `the file has ${data.length} bytes; its header describes ${body + total}`);
  session.reset();
  let at = body;
  for (const b of h.blobs) {
    session.cache.importLayer(b.layer, h.position, data.subarray(at, at + b.bytes), b.ringEnd);
    at += b.bytes;
  }
  session.cache.setLength(h.position);
  return { position: h.position, tokens: h.tokens };
}
