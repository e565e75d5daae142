/**
 * What a benchmark's results say they were measured from: the short commit, and "with uncommitted changes" when
 * tracked files other than the results and the documents (bench/results/, *.md) differ from it.
 */
import { execFileSync } from "node:child_process";

export function gitDescription(repoRoot: string): string {
  try {
    const commit = execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: repoRoot, encoding: "utf8" }).trim();
    const dirty = execFileSync("git", ["status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results", ":!*.md"], { cwd: repoRoot, encoding: "utf8" }).trim();
    return dirty ? `${commit} with uncommitted changes` : commit;
  } catch {
    return "unknown (not a git checkout)";
  }
}
