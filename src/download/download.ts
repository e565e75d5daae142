/**
 * One HTTP(S) download into a cache path, safe to interrupt at any moment:
 *
 *   dest.part       the bytes received so far: always a prefix of the remote file
 *   dest.part.json  what the part belongs to ({url, etag, total}); a part without it, or for another URL, is discarded
 *   dest            appears only by rename, after the byte count (and the sha256, when the server names one) checked out
 *
 * A request for an existing part asks for the rest (`Range: bytes=N-`, with `If-Range: <etag>` when the server gave
 * a strong ETag). 206 with a Content-Range starting at N appends; 200 (the server ignored the range, or the file
 * changed) restarts from zero in the same response; 416 with a total equal to the part means the part is whole.
 * Redirects (the hub answers 302 to a CDN) are followed up to MAX_REDIRECTS; credentials go to the first host only.
 * The hub's redirect carries X-Linked-Size and X-Linked-Etag (the file's sha256 for LFS files): both are checked.
 * A dropped connection, a short body or an idle timeout keeps the part and retries (resuming) `retries` times.
 * dest.part.lock (the downloader's pid) keeps two processes from writing one part; a lock of a dead process is taken over.
 */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, open, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import http from "node:http";
import https from "node:https";
import type { LookupFunction } from "node:net";
import path from "node:path";
import { partPaths } from "./cache.js";

export const MAX_REDIRECTS = 10;
/** No response headers, or no body bytes, for this long: the attempt fails (and is retried, resuming). */
export const DEFAULT_IDLE_TIMEOUT_MS = 30_000;
export const DEFAULT_RETRIES = 3;

export type DownloadErrorKind =
  | "offline" // the host name does not resolve: no network, or a wrong host
  | "unreachable" // connection refused, network or host unreachable
  | "not-found" // HTTP 404
  | "unauthorized" // HTTP 401 / 403 (gated or private repository)
  | "http" // any other HTTP status
  | "interrupted" // the body stopped early (dropped connection, short body, idle timeout): the part is kept
  | "size-mismatch" // the server's sizes disagree with each other or with the bytes received
  | "hash-mismatch" // the bytes' sha256 differs from the one the server named
  | "redirects" // too many, or a redirect without a Location
  | "busy"; // another live process is downloading the same file

export class DownloadError extends Error {
  constructor(
    readonly kind: DownloadErrorKind,
    message: string,
    readonly url: string,
    /** True when a .part is kept and the next attempt resumes from it. */
    readonly resumable = false,
    readonly status?: number,
  ) {
    super(message);
    this.name = "DownloadError";
  }
}

export interface DownloadProgress {
  phase: "start" | "data" | "retry" | "restart" | "verify" | "done";
  url: string;
  dest: string;
  /** Bytes of the file held so far (part included). */
  received: number;
  /** Size of the whole file, when the server said. */
  total: number | undefined;
  /** Bytes that were already in the part when this attempt started. */
  resumedFrom: number;
  /** Why a retry or a restart happens. */
  reason?: string;
}

export interface DownloadOptions {
  /** Extra request headers (Authorization for the hub): sent to the URL's own host only, never across redirects. */
  headers?: Readonly<Record<string, string>>;
  onProgress?: (p: DownloadProgress) => void;
  idleTimeoutMs?: number;
  /** Further attempts after an interrupted one (each resumes). Default DEFAULT_RETRIES. */
  retries?: number;
  /** Wait before retry n (n = 1, 2, ...): n × this. Default 1000. */
  retryDelayMs?: number;
  /** How messages name the file (default: the URL), e.g. "hf:owner/repo/model.gguf". */
  what?: string;
  /** A sentence appended to the 404 message (e.g. which repository and file were asked for). */
  notFoundHint?: string;
  /** DNS lookup for the requests (tests). */
  lookup?: LookupFunction;
}

export interface DownloadResult {
  path: string;
  bytes: number;
  /** Hex sha256 when the server named one and it was checked. */
  sha256?: string;
}

interface PartMeta {
  url: string;
  etag?: string;
  total?: number;
}

/** What one attempt learned beyond the bytes: the sizes and hash the server announced. */
interface Announced {
  total?: number;
  linkedSize?: number;
  sha256?: string;
  etag?: string;
}

/** Download `url` to `dest` (resuming `dest.part` if one is there). Resolves once `dest` holds the whole, checked file. */
export async function downloadFile(url: string, dest: string, opts: DownloadOptions = {}): Promise<DownloadResult> {
  await mkdir(path.dirname(dest), { recursive: true });
  const release = await lockDownload(url, dest, opts.what ?? url);
  try {
    // Another process may have finished it while we waited for the lock.
    const done = await stat(dest).catch(() => undefined);
    if (done?.isFile()) return { path: dest, bytes: done.size };
    return await downloadWithRetries(url, dest, opts);
  } finally {
    await release();
  }
}

async function downloadWithRetries(url: string, dest: string, opts: DownloadOptions): Promise<DownloadResult> {
  const retries = opts.retries ?? DEFAULT_RETRIES;
  const delay = opts.retryDelayMs ?? 1000;
  for (let attempt = 0; ; attempt++) {
    try {
      return await attemptDownload(url, dest, opts);
    } catch (err) {
      const retryable = err instanceof DownloadError && (err.kind === "interrupted" || (err.kind === "http" && (err.status ?? 0) >= 500));
      if (!retryable || attempt >= retries) throw err;
      const { part } = partPaths(dest);
      const have = await fileSize(part);
      opts.onProgress?.({ phase: "retry", url, dest, received: have, total: undefined, resumedFrom: have, reason: err.message });
      if (delay > 0) await new Promise((r) => setTimeout(r, delay * (attempt + 1)));
    }
  }
}

async function attemptDownload(url: string, dest: string, opts: DownloadOptions): Promise<DownloadResult> {
  const what = opts.what ?? url;
  const { part, meta } = partPaths(dest);
  let have = await usablePartSize(url, part, meta);
  const saved = have > 0 ? await readMeta(meta) : undefined;

  const headers: Record<string, string> = { "user-agent": "kvsplit", "accept-encoding": "identity", ...opts.headers };
  if (have > 0) {
    headers.range = `bytes=${have}-`;
    if (saved?.etag && !saved.etag.startsWith("W/")) headers["if-range"] = saved.etag;
  }
  const { res, stalled, announced, finalUrl } = await requestFollowingRedirects(url, headers, opts, what);

  let resumedFrom = have;
  if (res.statusCode === 416) {
    res.resume();
    const total = contentRangeTotal(res.headers["content-range"]);
    if (have > 0 && total === have) return finish(url, dest, have, { ...announced, total }, opts, what);
    await discardPart(part, meta);
    throw new DownloadError("interrupted", `${what}: the server refused the resume range (HTTP 416); the partial file was dropped, starting over`, url, true, 416);
  }
  if (res.statusCode === 206) {
    const range = parseContentRange(res.headers["content-range"]);
    if (!range || range.start !== have || (saved?.total !== undefined && range.total !== saved.total)) {
      res.destroy();
      await discardPart(part, meta);
      throw new DownloadError(
        "interrupted",
        `${what}: the server answered the resume request with range '${res.headers["content-range"] ?? "(none)"}' instead of bytes ${have}-${saved?.total !== undefined ? `/${saved.total}` : ""}; starting over`,
        url,
        true,
        206,
      );
    }
    announced.total = range.total;
  } else if (res.statusCode === 200) {
    announced.total = contentLength(res.headers["content-length"]);
    if (have > 0) {
      // The server ignored the Range (or the file changed under If-Range): this body is the whole file.
      opts.onProgress?.({ phase: "restart", url, dest, received: 0, total: announced.total, resumedFrom: 0, reason: "the server sent the whole file instead of the rest" });
      have = 0;
      resumedFrom = 0;
    }
  } else {
    res.resume();
    throw statusError(res.statusCode ?? 0, res.statusMessage ?? "", url, finalUrl, what, opts.notFoundHint);
  }
  announced.etag = headerText(res.headers.etag) ?? announced.etag;
  if (announced.linkedSize !== undefined && announced.total !== undefined && announced.linkedSize !== announced.total) {
    res.destroy();
    await discardPart(part, meta);
    throw new DownloadError("size-mismatch", `${what}: the hub says the file has ${announced.linkedSize} bytes but the download server sends ${announced.total}`, url);
  }
  const expected = announced.total ?? announced.linkedSize;
  await writeFile(meta, JSON.stringify({ url, etag: announced.etag, total: expected } satisfies PartMeta));

  const file = await open(part, have > 0 ? "a" : "w");
  let received = have;
  const report = (phase: DownloadProgress["phase"]) => opts.onProgress?.({ phase, url, dest, received, total: expected, resumedFrom });
  report("start");
  let failure: unknown;
  try {
    for await (const chunk of res as AsyncIterable<Buffer>) {
      if (expected !== undefined && received + chunk.length > expected) {
        failure = new DownloadError("size-mismatch", `${what}: the server sent more than the ${expected} bytes it announced`, url);
        break;
      }
      await file.write(chunk);
      received += chunk.length;
      report("data");
    }
  } catch (err) {
    failure = err;
  } finally {
    await file.close();
  }
  if (failure instanceof DownloadError) {
    res.destroy();
    await discardPart(part, meta);
    throw failure;
  }
  const short = expected !== undefined && received < expected;
  if (failure !== undefined || short || !res.complete) {
    const reason = stalled.reason ?? (failure instanceof Error ? `connection lost: ${failure.message}` : "the connection closed early");
    const of = expected !== undefined ? ` of ${expected}` : "";
    throw new DownloadError(
      "interrupted",
      `${what}: the download stopped at ${received}${of} bytes (${reason}); the partial file ${part} is kept and the next run resumes from it`,
      url,
      true,
    );
  }
  return finish(url, dest, received, { ...announced, total: expected ?? received }, opts, what);
}

/** The part is whole: check size and hash, then rename it into place. */
async function finish(url: string, dest: string, bytes: number, announced: Announced, opts: DownloadOptions, what: string): Promise<DownloadResult> {
  const { part, meta } = partPaths(dest);
  const onDisk = await fileSize(part);
  if (onDisk !== bytes || (announced.total !== undefined && onDisk !== announced.total)) {
    await discardPart(part, meta);
    throw new DownloadError("size-mismatch", `${what}: expected ${announced.total ?? bytes} bytes but ${onDisk} are on disk; the partial file was dropped`, url);
  }
  let sha256: string | undefined;
  if (announced.sha256) {
    opts.onProgress?.({ phase: "verify", url, dest, received: bytes, total: bytes, resumedFrom: bytes });
    sha256 = await sha256OfFile(part);
    if (sha256 !== announced.sha256) {
      await discardPart(part, meta);
      throw new DownloadError("hash-mismatch", `${what}: the downloaded bytes have sha256 ${sha256} but the hub names ${announced.sha256}; the file was dropped`, url);
    }
  }
  await rename(part, dest);
  await rm(meta, { force: true });
  opts.onProgress?.({ phase: "done", url, dest, received: bytes, total: bytes, resumedFrom: bytes });
  return { path: dest, bytes, sha256 };
}

interface FollowedResponse extends Response {
  announced: Announced;
  finalUrl: string;
}

async function requestFollowingRedirects(url: string, headers: Record<string, string>, opts: DownloadOptions, what: string): Promise<FollowedResponse> {
  const announced: Announced = {};
  const firstHost = new URL(url).host;
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const sameHost = new URL(current).host === firstHost;
    const hopHeaders = sameHost ? headers : withoutCredentials(headers);
    const { res, stalled } = await request(current, hopHeaders, opts, what);
    noteAnnounced(res, announced);
    const status = res.statusCode ?? 0;
    if (![301, 302, 303, 307, 308].includes(status)) return { res, stalled, announced, finalUrl: current };
    res.resume();
    const location = headerText(res.headers.location);
    if (!location) throw new DownloadError("redirects", `${what}: HTTP ${status} redirect without a Location header from ${current}`, url, false, status);
    current = new URL(location, current).href;
  }
  throw new DownloadError("redirects", `${what}: more than ${MAX_REDIRECTS} redirects starting at ${url}`, url);
}

/** A response, and why its socket was closed by us (the idle timeout) if it was: the body error then says only "aborted". */
interface Response {
  res: http.IncomingMessage;
  stalled: { reason?: string };
}

function request(url: string, headers: Record<string, string>, opts: DownloadOptions, what: string): Promise<Response> {
  const target = new URL(url);
  const client = target.protocol === "https:" ? https : target.protocol === "http:" ? http : undefined;
  if (!client) return Promise.reject(new DownloadError("http", `${what}: unsupported URL scheme '${target.protocol}' (allowed: https:, http:)`, url));
  const timeout = opts.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS;
  const stalled: { reason?: string } = {};
  return new Promise((resolve, reject) => {
    const req = client.get(target, { headers, agent: false, lookup: opts.lookup }, (res) => {
      // From here on the socket idle timeout also guards the body: a stalled body ends the iteration with an error.
      resolve({ res, stalled });
    });
    req.setTimeout(timeout, () => {
      stalled.reason = `no data for ${timeout / 1000} s`;
      req.destroy(new Error(stalled.reason));
    });
    req.on("error", (err) => reject(connectionError(err as NodeJS.ErrnoException, target, what)));
  });
}

/** A failure before any response: say plainly whether the machine looks offline or the host is unreachable. */
function connectionError(err: NodeJS.ErrnoException, target: URL, what: string): DownloadError {
  const host = target.hostname;
  const port = target.port || (target.protocol === "https:" ? "443" : "80");
  const offlineHint = "the model is not in the cache yet, so kvsplit needs the network once: connect and run again, or pass a local .gguf path";
  switch (err.code) {
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
    case "EAI_FAIL":
      return new DownloadError("offline", `${what}: cannot resolve host ${host} (${err.code}): are you offline? ${capitalized(offlineHint)}`, target.href);
    case "ECONNREFUSED":
      return new DownloadError("unreachable", `${what}: cannot connect to ${host}:${port} (connection refused); ${offlineHint}`, target.href);
    case "ENETUNREACH":
    case "EHOSTUNREACH":
    case "ENETDOWN":
    case "EHOSTDOWN":
      return new DownloadError("offline", `${what}: cannot reach ${host}:${port} (${err.code}): are you offline? ${capitalized(offlineHint)}`, target.href);
    default:
      // Reset or timed out before any response: transient, worth a retry.
      return new DownloadError("interrupted", `${what}: request to ${host}:${port} failed before any response (${err.code ?? err.message})`, target.href, true);
  }
}

function statusError(status: number, text: string, url: string, finalUrl: string, what: string, notFoundHint?: string): DownloadError {
  const from = finalUrl === url ? url : `${finalUrl} (redirected from ${url})`;
  if (status === 404) {
    return new DownloadError("not-found", `${what}: not found (HTTP 404 from ${from})${notFoundHint ? `; ${notFoundHint}` : ""}`, url, false, status);
  }
  if (status === 401 || status === 403) {
    return new DownloadError(
      "unauthorized",
      `${what}: access denied (HTTP ${status} from ${from}); the repository may be gated or private: accept its terms on the hub and set HF_TOKEN to an access token`,
      url,
      false,
      status,
    );
  }
  return new DownloadError("http", `${what}: HTTP ${status} ${text} from ${from}`, url, false, status);
}

function noteAnnounced(res: http.IncomingMessage, announced: Announced): void {
  const linkedSize = contentLength(res.headers["x-linked-size"]);
  if (linkedSize !== undefined && announced.linkedSize === undefined) announced.linkedSize = linkedSize;
  const linkedEtag = headerText(res.headers["x-linked-etag"]);
  const sha = linkedEtag?.replace(/^W\//, "").replace(/"/g, "").toLowerCase();
  if (sha && /^[0-9a-f]{64}$/.test(sha) && announced.sha256 === undefined) announced.sha256 = sha;
}

function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() !== "authorization" && k.toLowerCase() !== "cookie") out[k] = v;
  return out;
}

/** Bytes of a part worth resuming: 0 (and the part removed) when it has no sidecar or belongs to another URL. */
async function usablePartSize(url: string, part: string, meta: string): Promise<number> {
  const size = await fileSize(part);
  if (size === 0) return 0;
  const saved = await readMeta(meta);
  if (saved?.url !== url || (saved.total !== undefined && size > saved.total)) {
    await discardPart(part, meta);
    return 0;
  }
  return size;
}

async function readMeta(meta: string): Promise<PartMeta | undefined> {
  try {
    const value = JSON.parse(await readFile(meta, "utf8")) as PartMeta;
    return typeof value?.url === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}

/**
 * One downloader per file: `dest.part.lock` holds the owner's pid (created exclusively). A lock whose process is gone
 * is stale and taken over; a live one is a "busy" error rather than two writers interleaving one part.
 */
async function lockDownload(url: string, dest: string, what: string): Promise<() => Promise<void>> {
  const lock = `${dest}.part.lock`;
  for (let tries = 0; tries < 2; tries++) {
    try {
      const handle = await open(lock, "wx");
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(lock, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const owner = Number((await readFile(lock, "utf8").catch(() => "")).trim());
      if (Number.isInteger(owner) && owner > 0 && processAlive(owner)) {
        throw new DownloadError("busy", `${what}: another kvsplit process (pid ${owner}) is downloading it right now (lock ${lock}); wait for it, or delete the lock if that process is gone`, url);
      }
      await rm(lock, { force: true });
    }
  }
  throw new DownloadError("busy", `${what}: could not take the download lock ${lock}`, url);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function discardPart(part: string, meta: string): Promise<void> {
  await rm(part, { force: true });
  await rm(meta, { force: true });
}

async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch {
    return 0;
  }
}

async function sha256OfFile(file: string): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest("hex");
}

function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function headerText(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

function contentLength(v: string | string[] | undefined): number | undefined {
  const text = headerText(v);
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

/** `bytes START-END/TOTAL` → {start, total}; undefined when malformed or the total is unknown (`*`). */
export function parseContentRange(v: string | string[] | undefined): { start: number; end: number; total: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(headerText(v)?.trim() ?? "");
  if (!m) return undefined;
  const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (!(start <= end && end < total)) return undefined;
  return { start, end, total };
}

/** The total of a Content-Range: `bytes START-END/TOTAL`, or a 416 answer with an asterisk for the range. */
function contentRangeTotal(v: string | string[] | undefined): number | undefined {
  const m = /\/(\d+)$/.exec(headerText(v)?.trim() ?? "");
  return m ? Number(m[1]) : undefined;
}
