/**
 * Paths into ../shared (read-only models and evaluation text beside the repository).
 * Tests that need them call `requireShared(t)` style helpers and skip with a clear message where shared/ is absent.
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";

const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
export const SHARED_DIR = process.env.KVSPLIT_SHARED_DIR ?? path.resolve(repoRoot, "..", "shared");

export const sharedPaths = {
  stories260K: path.join(SHARED_DIR, "models", "stories260K.gguf"),
  stories260KGgmlOrg: path.join(SHARED_DIR, "models", "stories260K.ggml-org.gguf"),
  hd64: path.join(SHARED_DIR, "models", "tinystories-2m-hd64.gguf"),
  hd64F16: path.join(SHARED_DIR, "models", "tinystories-2m-hd64-f16.gguf"),
  evalText: path.join(SHARED_DIR, "data", "tinystories-valid-sample.txt"),
};

/** The skip reason for node:test (`{ skip: sharedSkip(paths) }`), or false when every path exists. */
export function sharedSkip(...paths: string[]): string | false {
  const missing = paths.filter((p) => !existsSync(p));
  return missing.length === 0 ? false : `needs ../shared (missing: ${missing.join(", ")}); skipped because shared/ is absent`;
}

export const REPO_ROOT = repoRoot;
