/**
 * Where downloaded models live: one cache directory per user, following each platform's convention,
 * and one fixed path per remote file inside it (so a second run finds the file without any request).
 *
 *   KVSPLIT_CACHE_DIR (or the CLI's --cache-dir)   wins everywhere
 *   Linux and others   $XDG_CACHE_HOME/kvsplit, else ~/.cache/kvsplit
 *   macOS              ~/Library/Caches/kvsplit
 *   Windows            %LOCALAPPDATA%\kvsplit, else ~\AppData\Local\kvsplit
 *
 * Layout inside it:
 *   huggingface/OWNER/REPO/REVISION/PATH/TO/FILE.gguf     for hf: specs
 *   url/HOST[_PORT]/URLHASH16/FILE.gguf                   for plain http(s) URLs (hash of the whole URL)
 * A file is only ever renamed into its final path after its size (and hash, when known) checked out; while it
 * downloads it is FILE.gguf.part, with FILE.gguf.part.json beside it recording what the part belongs to.
 */
import { createHash } from "node:crypto";
import { homedir } from "node:os";
import path from "node:path";

export const CACHE_DIR_ENV = "KVSPLIT_CACHE_DIR";

/** The platform's cache directory for kvsplit (not created here). */
export function defaultCacheDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
): string {
  const override = env[CACHE_DIR_ENV];
  if (override) return path.resolve(override);
  if (platform === "win32") {
    const local = env.LOCALAPPDATA || path.win32.join(home, "AppData", "Local");
    return path.win32.join(local, "kvsplit");
  }
  if (platform === "darwin") return path.posix.join(home, "Library", "Caches", "kvsplit");
  const xdg = env.XDG_CACHE_HOME;
  // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (xdg && path.posix.isAbsolute(xdg)) return path.posix.join(xdg, "kvsplit");
  return path.posix.join(home, ".cache", "kvsplit");
}

/** A repository file on the Hugging Face hub. */
export interface HfFileRef {
  owner: string;
  repo: string;
  revision: string;
  /** Path inside the repository, `/`-separated (may contain folders). */
  file: string;
}

/** A path component that is safe as a directory or file name on every platform: no separators, no `.`/`..`. */
const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+=@,-]*$/;

/** Cache path of a hub file: huggingface/OWNER/REPO/REVISION/FILE (revision encoded so `refs/pr/1` is one folder). */
export function hfCachePath(cacheDir: string, ref: HfFileRef): string {
  const revision = encodeURIComponent(ref.revision).replace(/%/g, "_");
  const segments = [ref.owner, ref.repo, revision, ...ref.file.split("/")];
  for (const s of segments) {
    if (!SAFE_SEGMENT.test(s)) throw new RangeError(`cannot store '${s}' from ${ref.owner}/${ref.repo}/${ref.file} in the cache: unsafe path component`);
  }
  return path.join(cacheDir, "huggingface", ...segments);
}

/** Cache path of a plain URL: url/HOST[_PORT]/HASH/BASENAME, the hash covering the whole URL (query included). */
export function urlCachePath(cacheDir: string, url: URL): string {
  const host = (url.port ? `${url.hostname}_${url.port}` : url.hostname).replace(/[^A-Za-z0-9.-]/g, "_");
  const hash = createHash("sha256").update(url.href).digest("hex").slice(0, 16);
  const last = decodeURIComponent(url.pathname.split("/").pop() ?? "");
  let base = last.replace(/[^A-Za-z0-9._+=@,-]/g, "_").replace(/^[._]+/, "");
  if (base === "") base = "model.gguf";
  return path.join(cacheDir, "url", host || "_", hash, base);
}

/** The partial download beside a cache path, and its sidecar describing where it came from. */
export function partPaths(dest: string): { part: string; meta: string } {
  return { part: `${dest}.part`, meta: `${dest}.part.json` };
}
