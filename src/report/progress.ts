/**
 * Progress for long runs, always on stderr: a cli-progress bar when stderr is a terminal, otherwise a plain line
 * at most every few seconds (and at the end) with the time so far and an ETA, so logs and CI output stay short.
 */
import cliProgress from "cli-progress";

export interface Progress {
  /** `done` of `total` steps finished; `label` says what is running now. */
  update(done: number, label: string): void;
  /** A line for people, printed above the bar. */
  log(line: string): void;
  stop(): void;
}

const PLAIN_INTERVAL_MS = 5000;

/** `intervalMs`: the least time between two plain lines (tests shorten it). */
export function createProgress(total: number, enabled = true, intervalMs = PLAIN_INTERVAL_MS): Progress {
  const write = (line: string): void => {
    process.stderr.write(line + "\n");
  };
  if (!enabled) return { update() {}, log: write, stop() {} };
  const started = performance.now();
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { stream: process.stderr, format: "{bar} {value}/{total} chunks | {label} | {duration_formatted} (eta {eta_formatted})", hideCursor: true, clearOnComplete: true },
      cliProgress.Presets.shades_classic,
    );
    let current = { done: 0, label: "" };
    bar.start(total, 0, { label: "" });
    return {
      update(done, label) {
        current = { done, label };
        bar.update(done, { label });
      },
      log(line) {
        bar.stop();
        write(line);
        bar.start(total, current.done, { label: current.label });
      },
      stop: () => bar.stop(),
    };
  }
  let lastPrinted = -Infinity;
  // the ETA's rate counts from the first update, not from 0: a run resumed from a checkpoint starts far along
  let first: { done: number; at: number } | undefined;
  return {
    update(done, label) {
      const now = performance.now();
      first ??= { done, at: now };
      if (done < total && now - lastPrinted < intervalMs) return;
      lastPrinted = now;
      const elapsed = (now - started) / 1000;
      const rate = done > first.done ? (now - first.at) / 1000 / (done - first.done) : undefined; // seconds per step
      const eta = rate !== undefined && done < total ? `, eta ${formatDuration(rate * (total - done))}` : "";
      write(`[${done}/${total}] ${label} (${elapsed.toFixed(1)} s${eta})`);
    },
    log: write,
    stop() {},
  };
}

/** 12.3 -> "12 s", 75 -> "1 min 15 s", 3725 -> "1 h 2 min". */
export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}
