/**
 * Static files for the chat page (dist/web, written by npm run build:web): GET and HEAD with single Range requests
 * (a model file streams into a page in ranges), content types, and the cross-origin isolation headers the page needs
 * for WebAssembly threads (Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy: require-corp).
 * Only files directly inside a mounted directory are served: no "..", no subdirectories, no dotfiles.
 */
import { createReadStream, existsSync, statSync } from "node:fs";
import type http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** dist/web beside this module's dist/src/serve. */
export const WEB_DIR = fileURLToPath(new URL("../../web/", import.meta.url));

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".wasm": "application/wasm",
  ".png": "image/png",
  ".gguf": "application/octet-stream",
};

export const ISOLATION_HEADERS = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
} as const;

export interface StaticMount {
  /** URL path prefix ending in "/": "/" or "/models/". */
  prefix: string;
  dir: string;
}

/** The file a URL path names under the mounts (index.html for the prefix itself), or undefined. */
export function staticFileOf(mounts: readonly StaticMount[], urlPath: string): string | undefined {
  for (const m of mounts) {
    if (!urlPath.startsWith(m.prefix)) continue;
    let name: string;
    try {
      name = decodeURIComponent(urlPath.slice(m.prefix.length)) || "index.html";
    } catch {
      return undefined; // malformed %-escapes name no file
    }
    if (name.includes("/") || name.includes("\\") || name.startsWith(".")) continue;
    const file = path.join(m.dir, name);
    if (existsSync(file) && statSync(file).isFile()) return file;
  }
  return undefined;
}

/**
 * Send `file` (GET or HEAD; one `Range: bytes=a-b` honoured with 206, an unsatisfiable one with 416), with the
 * isolation headers unless `isolate` is false (a test of a page without them).
 */
export function sendStaticFile(req: http.IncomingMessage, res: http.ServerResponse, file: string, isolate = true): void {
  const size = statSync(file).size;
  const headers: Record<string, string | number> = {
    ...(isolate ? ISOLATION_HEADERS : {}),
    "Content-Type": TYPES[path.extname(file)] ?? "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Cache-Control": "no-cache",
  };
  let start = 0;
  let end = size - 1;
  const range = req.headers.range;
  let status = 200;
  if (range !== undefined) {
    const m = /^bytes=(\d*)-(\d*)$/.exec(range.trim());
    const from = m?.[1] ? Number(m[1]) : undefined;
    const to = m?.[2] ? Number(m[2]) : undefined;
    if (m && from === undefined && to !== undefined) start = Math.max(0, size - to); // the last `to` bytes
    else if (m && from !== undefined) {
      start = from;
      end = Math.min(size - 1, to ?? size - 1);
    }
    if (!m || start >= size || start > end) {
      res.writeHead(416, { ...headers, "Content-Range": `bytes */${size}` }).end();
      return;
    }
    status = 206;
    headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  }
  headers["Content-Length"] = size === 0 ? 0 : end - start + 1;
  res.writeHead(status, headers);
  if (req.method === "HEAD" || size === 0) {
    res.end();
    return;
  }
  createReadStream(file, { start, end }).pipe(res);
}
