/**
 * The built CLI (dist/src/cli/main.js), spawned as a user would run it. Build first: npx tsc -p tsconfig.json.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "./shared.js";

export const CLI = path.join(REPO_ROOT, "dist", "src", "cli", "main.js");

/** What one CLI run gave: exit code (null when killed) and both streams. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `kvsplit ...args` in `cwd` (with `env` when given, and `input` on stdin), stopped after two minutes. */
export function runCli(cwd: string, args: readonly string[], env?: NodeJS.ProcessEnv, input?: string): CliRun {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd, timeout: 120_000, ...(env ? { env } : {}), ...(input !== undefined ? { input } : {}) });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
