/**
 * MODEL specs → a local file path, downloading remote models once into the cache (cache.ts) with download.ts.
 *
 * Accepted specs:
 *   path/to/model.gguf                          a local file, returned unchanged (no check here: the loader reports it)
 *   hf:OWNER/REPO/FILE.gguf                     FILE on the hub's main branch (FILE may contain folders: sub/x.gguf)
 *   hf:OWNER/REPO:FILE.gguf                     the same, llama.cpp-style colon
 *   hf:OWNER/REPO@REVISION/FILE.gguf            a branch, tag or commit (also hf:OWNER/REPO@REVISION:FILE.gguf)
 *   https://huggingface.co/OWNER/REPO/resolve/REVISION/FILE.gguf   (or /blob/): the same cache entry as the hf: form
 *   https://host/any/path/model.gguf            any other URL (http: too), cached by the URL's hash
 * Quant tags (hf:OWNER/REPO:Q4_K_M) are not supported: they need the hub's file listing; name the .gguf file.
 *
 * Environment: KVSPLIT_HF_ENDPOINT (else HF_ENDPOINT, else https://huggingface.co) is the hub to download from;
 * HF_TOKEN (else HUGGING_FACE_HUB_TOKEN) is sent as a bearer token to that hub only; HF_HUB_OFFLINE=1 or
 * KVSPLIT_OFFLINE=1 never downloads (a cached file still resolves); KVSPLIT_CACHE_DIR moves the cache.
 */
import { existsSync, statSync } from "node:fs";
import { defaultCacheDir, hfCachePath, urlCachePath, type HfFileRef } from "./cache.js";
import { downloadFile, DownloadError, type DownloadOptions, type DownloadProgress } from "./download.js";

export const DEFAULT_HF_ENDPOINT = "https://huggingface.co";

/** A MODEL spec that is neither a usable hf: spec nor a URL nor a path. */
export class ModelSpecError extends Error {
  constructor(
    readonly spec: string,
    problem: string,
  ) {
    super(`-m ${spec}: ${problem}; ${SPEC_FORMS}`);
    this.name = "ModelSpecError";
  }
}

const SPEC_FORMS = "accepted forms: a .gguf path, hf:OWNER/REPO/FILE.gguf, hf:OWNER/REPO:FILE.gguf, hf:OWNER/REPO@REVISION/FILE.gguf, or an https:// URL";

export type ModelSpec =
  | { kind: "local"; path: string }
  | { kind: "hf"; ref: HfFileRef }
  | { kind: "url"; url: URL };

/** Hub owner and repository names: letters, digits, `-`, `_`, `.`, not starting with `.` or `-`. */
const HUB_NAME = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,95}$/;

export function isRemoteModelSpec(spec: string): boolean {
  return spec.startsWith("hf:") || /^https?:\/\//i.test(spec);
}

export function parseModelSpec(spec: string): ModelSpec {
  if (spec.startsWith("hf:")) return { kind: "hf", ref: parseHfSpec(spec) };
  if (/^https?:\/\//i.test(spec)) {
    let url: URL;
    try {
      url = new URL(spec);
    } catch {
      throw new ModelSpecError(spec, "not a valid URL");
    }
    const hub = hubRefFromUrl(url);
    return hub ? { kind: "hf", ref: hub } : { kind: "url", url };
  }
  return { kind: "local", path: spec };
}

function parseHfSpec(spec: string): HfFileRef {
  const body = spec.slice(3);
  // OWNER/REPO[@REV] then ':' or '/' then FILE
  const m = /^([^/:@]+)\/([^/:@]+)(?:@([^/:]+))?[/:](.+)$/.exec(body);
  if (!m) throw new ModelSpecError(spec, "expected hf:OWNER/REPO/FILE.gguf");
  const [, owner, repo, revision = "main", file] = m as unknown as [string, string, string, string | undefined, string];
  if (!HUB_NAME.test(owner)) throw new ModelSpecError(spec, `'${owner}' is not a valid hub owner name`);
  if (!HUB_NAME.test(repo)) throw new ModelSpecError(spec, `'${repo}' is not a valid hub repository name`);
  checkRepoFile(spec, file);
  return { owner, repo, revision, file };
}

function checkRepoFile(spec: string, file: string): void {
  const parts = file.split("/");
  if (parts.some((p) => p === "" || p === "." || p === ".." || p.includes("\\"))) {
    throw new ModelSpecError(spec, `'${file}' is not a file path inside the repository`);
  }
  if (!/\.gguf$/i.test(file)) {
    throw new ModelSpecError(spec, `'${file}' is not a .gguf file name (quant tags such as :Q4_K_M are not supported; name the file)`);
  }
}

/** huggingface.co/OWNER/REPO/(resolve|blob)/REV/FILE → the hub file, so URL and hf: forms share a cache entry. */
function hubRefFromUrl(url: URL): HfFileRef | undefined {
  if (url.hostname !== "huggingface.co" || url.search !== "") return undefined;
  const parts = url.pathname.split("/").slice(1).map(decodeURIComponent);
  if (parts.length < 5 || (parts[2] !== "resolve" && parts[2] !== "blob")) return undefined;
  const [owner, repo, , revision, ...rest] = parts as [string, string, string, string, ...string[]];
  const file = rest.join("/");
  if (!HUB_NAME.test(owner) || !HUB_NAME.test(repo) || !/\.gguf$/i.test(file)) return undefined;
  checkRepoFile(url.href, file);
  return { owner, repo, revision, file };
}

/** The hub URL a repository file downloads from. */
export function hfFileUrl(ref: HfFileRef, endpoint = DEFAULT_HF_ENDPOINT): string {
  const base = endpoint.replace(/\/+$/, "");
  const file = ref.file.split("/").map(encodeURIComponent).join("/");
  return `${base}/${encodeURIComponent(ref.owner)}/${encodeURIComponent(ref.repo)}/resolve/${encodeURIComponent(ref.revision)}/${file}`;
}

export function hfEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  return env.KVSPLIT_HF_ENDPOINT || env.HF_ENDPOINT || DEFAULT_HF_ENDPOINT;
}

export interface ResolveOptions extends Pick<DownloadOptions, "idleTimeoutMs" | "retries" | "retryDelayMs" | "lookup"> {
  onProgress?: (p: DownloadProgress) => void;
  /** Default: defaultCacheDir(env). */
  cacheDir?: string;
  /** Default process.env (endpoint, token, offline flag, cache dir). */
  env?: NodeJS.ProcessEnv;
  /** Never download; a cached file still resolves. Default: HF_HUB_OFFLINE=1 or KVSPLIT_OFFLINE=1 in env. */
  offline?: boolean;
}

/** Where a spec lives locally (the cache path for remote specs; present or not). */
export function cachedModelPath(spec: string, opts: Pick<ResolveOptions, "cacheDir" | "env"> = {}): string {
  const parsed = parseModelSpec(spec);
  if (parsed.kind === "local") return parsed.path;
  const cacheDir = opts.cacheDir ?? defaultCacheDir(opts.env ?? process.env);
  return parsed.kind === "hf" ? hfCachePath(cacheDir, parsed.ref) : urlCachePath(cacheDir, parsed.url);
}

/**
 * The local path of a MODEL spec. Local paths come back unchanged; hf: specs and URLs come back as their cache path,
 * downloaded first when not cached yet (a cached file is used without any request).
 * Throws ModelSpecError for a malformed spec, DownloadError (with its `kind`) when the download fails.
 */
export async function resolveModelPath(spec: string, opts: ResolveOptions = {}): Promise<string> {
  const parsed = parseModelSpec(spec);
  if (parsed.kind === "local") return parsed.path;
  const env = opts.env ?? process.env;
  const dest = cachedModelPath(spec, { cacheDir: opts.cacheDir, env });
  if (existsSync(dest) && statSync(dest).isFile()) return dest;

  const hub = parsed.kind === "hf";
  const url = hub ? hfFileUrl(parsed.ref, hfEndpoint(env)) : parsed.url.href;
  const offline = opts.offline ?? (isTrue(env.HF_HUB_OFFLINE) || isTrue(env.KVSPLIT_OFFLINE));
  if (offline) {
    throw new DownloadError("offline", `${spec}: not in the cache (${dest}) and downloads are off (HF_HUB_OFFLINE / KVSPLIT_OFFLINE)`, url);
  }
  const token = env.HF_TOKEN || env.HUGGING_FACE_HUB_TOKEN;
  const result = await downloadFile(url, dest, {
    headers: hub && token ? { authorization: `Bearer ${token}` } : undefined,
    onProgress: opts.onProgress,
    idleTimeoutMs: opts.idleTimeoutMs,
    retries: opts.retries,
    retryDelayMs: opts.retryDelayMs,
    lookup: opts.lookup,
    what: spec,
    notFoundHint: hub
      ? `check that the repository ${parsed.ref.owner}/${parsed.ref.repo} exists and has the file ${parsed.ref.file} at revision ${parsed.ref.revision}`
      : undefined,
  });
  return result.path;
}

function isTrue(v: string | undefined): boolean {
  return v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
}
