/**
 * A temporary folder holding a small synthetic model and a story text, for CLI tests that need a model: created in
 * node:test's `before`, removed in `after`. Fields are filled once `before` has run.
 */
import { before, after } from "node:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { synthToFile, type SynthShape } from "../../src/gguf/synth.js";

/** A short story, repeated: enough tokens for a few 32-token chunks of the small models. */
export const STORY_TEXT = "Once upon a time there was a little girl named Lily. She saw a big red ball in the park and wanted to play with it. ".repeat(8);

export interface ModelDir {
  /** The folder (the CLI's working directory in these tests). */
  dir: string;
  /** dir/model.gguf: f32 weights of `shape`. */
  modelPath: string;
  /** dir/text.txt: STORY_TEXT. */
  textPath: string;
}

/** Registers before/after hooks for a folder with a synthetic model of `shape` (seed `seed`) and text.txt. */
export function useModelDir(prefix: string, shape: Partial<SynthShape>, seed: number): ModelDir {
  const md: ModelDir = { dir: "", modelPath: "", textPath: "" };
  before(() => {
    md.dir = mkdtempSync(path.join(os.tmpdir(), `kvsplit-${prefix}-`));
    md.modelPath = path.join(md.dir, "model.gguf");
    synthToFile({ preset: shape, type: "f32", seed }, md.modelPath);
    md.textPath = path.join(md.dir, "text.txt");
    writeFileSync(md.textPath, STORY_TEXT);
  });
  after(() => rmSync(md.dir, { recursive: true, force: true }));
  return md;
}
