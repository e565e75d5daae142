/**
 * Headless Chromium for the browser tests: Debian's /usr/bin/chromium (installed by .ci/run; never a browser
 * download) driven by playwright-core, a fresh user-data directory per launch, and a loopback server for the page
 * (dist/web at /, ../shared/models at /models/) with the cross-origin isolation headers and Range requests.
 */
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { chromium, type BrowserContext } from "playwright-core";
import { sendStaticFile, staticFileOf, WEB_DIR, type StaticMount } from "../../src/serve/static.js";
import { SHARED_DIR } from "./shared.js";

export const CHROMIUM = process.env.KVSPLIT_CHROMIUM ?? "/usr/bin/chromium";

/** The issue's flags (playwright adds --headless for `headless: true`). */
export const CHROMIUM_ARGS = [
  "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
];

export interface PageServer {
  url: string;
  /** Requests seen, by path (a reload that uses the browser's cached model asks for no model bytes). */
  requests: string[];
  close(): Promise<void>;
}

export const PAGE_MOUNTS: StaticMount[] = [
  { prefix: "/models/", dir: path.join(SHARED_DIR, "models") },
  { prefix: "/", dir: WEB_DIR },
];

/**
 * `isolated` false: without the cross-origin isolation headers (the page then runs the engine on one thread).
 * `route`: answers a request first where it returns true (a test's own paths).
 */
export async function startPageServer(
  mounts: readonly StaticMount[] = PAGE_MOUNTS, isolated = true,
  route?: (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean,
): Promise<PageServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    requests.push(`${req.method} ${url.pathname}${req.headers.range ? ` ${req.headers.range}` : ""}`);
    if (route?.(req, res, url)) return;
    const file = staticFileOf(mounts, url.pathname);
    if (file) return sendStaticFile(req, res, file, isolated);
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

export interface Browser {
  context: BrowserContext;
  /** Close the browser but keep its profile (relaunch() opens the same one: its Origin Private File System too). */
  close(): Promise<void>;
  relaunch(): Promise<Browser>;
  /** Close and delete the profile. */
  dispose(): Promise<void>;
}

export async function launchChromium(userDataDir = mkdtempSync(path.join(os.tmpdir(), "kvsplit-chromium-"))): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's (apt-get install chromium; .ci/run does) or set KVSPLIT_CHROMIUM`);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1200, height: 800 },
  });
  const browser: Browser = {
    context,
    close: () => context.close(),
    relaunch: async () => {
      await context.close();
      return launchChromium(userDataDir);
    },
    dispose: async () => {
      await context.close().catch(() => {});
      rmSync(userDataDir, { recursive: true, force: true });
    },
  };
  return browser;
}
