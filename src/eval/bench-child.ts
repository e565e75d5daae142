/**
 * The process one benchmark run lives in (forked by bench-runner.ts): reads a BenchJob from argv[2] (JSON), runs
 * that engine, and sends back `{ ok: true, result }` or `{ ok: false, name, message }` over the IPC channel.
 * A fresh process per run makes each run's peak RSS its own: `process.resourceUsage().maxRSS` (KiB) at the end.
 */
import { runKvsplitJob, type BenchJob, type BenchRunResult } from "./bench.js";

export type BenchChildMessage = { ok: true; result: BenchRunResult } | { ok: false; name: string; message: string };

async function runJob(job: BenchJob): Promise<BenchRunResult> {
  if (job.engine === "kvsplit") return runKvsplitJob(job);
  const { runLlamaCppJob } = await import("./bench-llamacpp.js");
  return runLlamaCppJob(job);
}

function reply(message: BenchChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) {
      process.stdout.write(JSON.stringify(message) + "\n");
      resolve();
      return;
    }
    process.send(message, undefined, {}, () => resolve());
  });
}

async function main(): Promise<void> {
  let message: BenchChildMessage;
  try {
    const job = JSON.parse(process.argv[2] ?? "") as BenchJob;
    const result = await runJob(job);
    result.rssPeakBytes = process.resourceUsage().maxRSS * 1024;
    message = { ok: true, result };
  } catch (err) {
    const e = err instanceof Error ? err : new Error(String(err));
    message = { ok: false, name: e.name, message: e.message };
  }
  await reply(message);
  // Exit explicitly: an engine's worker threads or native handles must not keep this process alive.
  process.exit(0);
}

await main();
