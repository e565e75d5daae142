/**
 * The job `kvsplit compare` runs when no model is given: a small synthetic Llama model written once with the project's
 * own synthesizer into a cache folder, and a short evaluation text written for this project (assets/default-eval.txt,
 * original stories, shipped with the code under the project's license).
 *
 * Synthetic (random) weights measure memory, speed and the numerical fidelity of each cache format (how far its
 * distributions move from an f32 cache), not how a trained model's quality suffers; the notes say so.
 */
import { existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { synthToFile, type SynthOptions } from "../gguf/synth.js";

/** The synthetic model: the "tiny" preset (head_dim 64, so every block format and the rotation apply), f32 weights. */
export const DEFAULT_SYNTH: Required<Pick<SynthOptions, "type" | "seed">> & { preset: "tiny" } = { preset: "tiny", type: "f32", seed: 1 };
/** Bump when the synthesizer's output for DEFAULT_SYNTH changes, so a stale cached file is not reused. */
const DEFAULT_MODEL_REVISION = 1;

/** Where downloaded and generated models are kept: $KVSPLIT_CACHE_DIR, else $XDG_CACHE_HOME/kvsplit, else ~/.cache/kvsplit. */
export function cacheDir(): string {
  if (process.env.KVSPLIT_CACHE_DIR) return process.env.KVSPLIT_CACHE_DIR;
  const xdg = process.env.XDG_CACHE_HOME;
  return path.join(xdg && xdg !== "" ? xdg : path.join(os.homedir(), ".cache"), "kvsplit");
}

/** The evaluation text shipped in assets/ (resolved from this module: src/eval or dist/src/eval). */
export function defaultTextPath(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, "../../assets/default-eval.txt"), path.resolve(here, "../../../assets/default-eval.txt")];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`the default evaluation text is missing (looked in ${candidates.join(", ")}); reinstall kvsplit or pass -f TEXT`);
  return found;
}

export interface DefaultJob {
  modelPath: string;
  textPath: string;
  text: string;
  /** True when the model was written now (false: reused from the cache). */
  built: boolean;
  notes: string[];
}

/** The synthetic model's path in the cache, written (atomically) when missing; and the shipped text. */
export function prepareDefaultJob(onLog: (line: string) => void = () => {}): DefaultJob {
  const dir = cacheDir();
  mkdirSync(dir, { recursive: true });
  const { preset, type, seed } = DEFAULT_SYNTH;
  const modelPath = path.join(dir, `synth-${preset}-${type}-seed${seed}-r${DEFAULT_MODEL_REVISION}.gguf`);
  let built = false;
  if (!existsSync(modelPath) || statSync(modelPath).size === 0) {
    onLog(`building the default synthetic model (${preset} preset, ${type} weights, seed ${seed}) into ${modelPath}`);
    synthToFile({ preset, type, seed }, modelPath);
    built = true;
  }
  const textPath = defaultTextPath();
  return { modelPath, textPath, text: readFileSync(textPath, "utf8"), built, notes: syntheticNotes() };
}

/** What the default job can and cannot show, and how to run on a real model. */
export function syntheticNotes(): string[] {
  return [
    "This ran on the embedded default: a synthetic model with random weights and a short text shipped with kvsplit.",
    "Synthetic weights show memory, speed and numerical fidelity (how far each cache format moves the outputs from an",
    "f32 cache), not real-model quality: perplexities of random weights mean nothing.",
    "For real results run on a real model: kvsplit compare -m path/to/model.gguf -f your-text.txt",
    "(or -m hf:OWNER/REPO/FILE.gguf, downloaded once into the cache).",
  ];
}
