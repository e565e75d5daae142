/**
 * The job `kvsplit compare` runs when no model is given: a small real model shipped with kvsplit
 * (assets/models/tinystories-2m-hd64-f16.gguf: 3.2M parameters trained on TinyStories for this project, head_dim 64 so
 * every block format and the rotation apply; see assets/models/README.md) and a short evaluation text written for this
 * project (assets/default-eval.txt, original stories in the model's domain).
 *
 * Trained weights show the real asymmetry (keys more sensitive than values) that synthetic weights hide; the notes
 * say that a 3M-parameter model's numbers are an illustration, and how to run on a real model.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The shipped default model's file name under assets/models/. */
export const DEFAULT_MODEL_FILE = "tinystories-2m-hd64-f16.gguf";

/** A file shipped in assets/ (resolved from this module: src/eval or dist/src/eval). */
function assetPath(relative: string, what: string, instead: string): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, "../../assets", relative), path.resolve(here, "../../../assets", relative)];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`${what} is missing (looked in ${candidates.join(", ")}); reinstall kvsplit or ${instead}`);
  return found;
}

/** The evaluation text shipped in assets/. */
export function defaultTextPath(): string {
  return assetPath("default-eval.txt", "the default evaluation text", "pass -f TEXT");
}

/** The model shipped in assets/models/. */
export function defaultModelPath(): string {
  return assetPath(path.join("models", DEFAULT_MODEL_FILE), "the default model", "pass -m MODEL");
}

export interface DefaultJob {
  modelPath: string;
  textPath: string;
  text: string;
  notes: string[];
}

/** The shipped model and text. */
export function prepareDefaultJob(): DefaultJob {
  const textPath = defaultTextPath();
  return { modelPath: defaultModelPath(), textPath, text: readFileSync(textPath, "utf8"), notes: defaultJobNotes() };
}

/** What the default job can and cannot show, and how to run on a real model. */
export function defaultJobNotes(): string[] {
  return [
    `This ran on the embedded default: ${DEFAULT_MODEL_FILE}, a 3.2M-parameter model trained on TinyStories for kvsplit`,
    "(head_dim 64, 4 layers), on a short text of stories shipped with kvsplit. Its numbers illustrate the trade-off",
    "(keys are more sensitive than values); a larger model's differ.",
    "For your model run: kvsplit compare -m path/to/model.gguf -f your-text.txt",
    "(or -m hf:OWNER/REPO/FILE.gguf, downloaded once into the cache).",
  ];
}
