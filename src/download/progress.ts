/**
 * Download progress for people, on stderr only (stdout stays the command's output): a cli-progress bar with bytes,
 * speed and ETA when the stream is a terminal; otherwise a line when the download starts, every PLAIN_INTERVAL_MS,
 * on retries and restarts, and when it is done.
 */
import cliProgress from "cli-progress";
import type { DownloadProgress } from "./download.js";

const PLAIN_INTERVAL_MS = 10_000;

export interface DownloadReporter {
  onProgress(p: DownloadProgress): void;
  /** Remove the bar (call in finally: also after a failure). */
  stop(): void;
}

export function createDownloadReporter(label: string, stream: NodeJS.WriteStream = process.stderr): DownloadReporter {
  const line = (text: string) => stream.write(text + "\n");
  let bar: cliProgress.SingleBar | undefined;
  let started = 0;
  let lastLine = 0;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    onProgress(p) {
      switch (p.phase) {
        case "start": {
          started = performance.now();
          const from = p.resumedFrom > 0 ? `, resuming at ${mib(p.resumedFrom)}` : "";
          const size = p.total !== undefined ? ` (${mib(p.total)}${from})` : from ? ` (${from.slice(2)})` : "";
          if (stream.isTTY && p.total !== undefined) {
            stopBar();
            bar = new cliProgress.SingleBar(
              {
                stream,
                format: `${label} {bar} {percentage}% | {done}/{size} | {speed} | eta {eta_formatted}`,
                hideCursor: true,
                clearOnComplete: true,
                etaBuffer: 50,
              },
              cliProgress.Presets.shades_classic,
            );
            bar.start(p.total, p.received, { done: mib(p.received), size: mib(p.total), speed: "" });
          } else {
            line(`downloading ${label}${size} to ${p.dest}`);
            lastLine = started;
          }
          return;
        }
        case "data": {
          const seconds = (performance.now() - started) / 1000;
          const speed = seconds > 0 ? `${mib((p.received - p.resumedFrom) / seconds)}/s` : "";
          if (bar) {
            bar.update(p.received, { done: mib(p.received), speed });
          } else if (performance.now() - lastLine >= PLAIN_INTERVAL_MS) {
            lastLine = performance.now();
            const of = p.total !== undefined ? ` of ${mib(p.total)}` : "";
            line(`  ${mib(p.received)}${of} ${speed}`);
          }
          return;
        }
        case "retry":
        case "restart":
          stopBar();
          line(`${label}: ${p.phase === "retry" ? "retrying" : "restarting from zero"}: ${p.reason ?? ""}`);
          return;
        case "verify":
          stopBar();
          line(`${label}: checking sha256 of ${mib(p.received)}`);
          return;
        case "done":
          stopBar();
          line(`downloaded ${label} (${mib(p.received)}) to ${p.dest}`);
          return;
      }
    },
    stop: stopBar,
  };
}

function mib(bytes: number): string {
  if (bytes >= 1024 ** 3) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  return `${(bytes / 1024 ** 2).toFixed(1)} MiB`;
}
