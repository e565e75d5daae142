/**
 * Checkpoints of a long perplexity run (a 32K-token chunk of an 8B model takes hours on two cores): every few minutes
 * the run writes where it is (chunk, tokens of it evaluated, the running sums) and its session's KV state, so a run
 * that is stopped continues from there with the same command. Two files, both written atomically:
 *   FILE       JSON: { version, text_sha256, ctx, n_chunks, kv, chunk, tokens_done, sums: {sumNll, sumNll2, count} }
 *   FILE.kvs   the session's saved KV state (model/session-state.ts) for the chunk in progress
 * A checkpoint is used only by a run of the same text, chunking and K/V configuration (its KV state also checks the
 * model and the formats); anything else is refused with PerplexityCheckpointError naming the difference.
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { writeFileAtomic } from "../report/atomic.js";
import type { Session } from "../model/session.js";
import type { PerplexitySums } from "./kld.js";

const VERSION = 1;

export class PerplexityCheckpointError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = "PerplexityCheckpointError";
  }
}

/** What a run is: a checkpoint of another run is not resumed. */
export interface CheckpointIdentity {
  textSha256: string;
  ctx: number;
  nChunks: number;
  /** The K/V configuration, as text (per-layer pairs, window, sinks, rotation). */
  kv: string;
}

/** Where a run was when its checkpoint was written. */
export interface CheckpointPosition {
  /** The chunk in progress (0-based). */
  chunk: number;
  /** Tokens of that chunk in the session's cache. */
  tokensDone: number;
  sums: PerplexitySums;
}

interface CheckpointFile extends CheckpointPosition {
  version: number;
  identity: CheckpointIdentity;
}

export class PerplexityCheckpoint {
  private lastWrite = performance.now();

  constructor(
    readonly file: string,
    private readonly identity: CheckpointIdentity,
    /** Minimum time between two checkpoints, ms. */
    private readonly everyMs: number,
  ) {}

  get stateFile(): string {
    return `${this.file}.kvs`;
  }

  /** The position saved by an earlier run of this same run, or undefined when there is none. */
  resume(session: Session): CheckpointPosition | undefined {
    if (!existsSync(this.file)) return undefined;
    let saved: CheckpointFile;
    try {
      saved = JSON.parse(readFileSync(this.file, "utf8")) as CheckpointFile;
    } catch (e) {
      throw new PerplexityCheckpointError(this.file, `not a readable checkpoint (${(e as Error).message}); delete it to start over`);
    }
    if (saved.version !== VERSION) throw new PerplexityCheckpointError(this.file, `checkpoint version ${saved.version}; this kvsplit writes ${VERSION}`);
    const mine = this.identity;
    for (const key of ["textSha256", "ctx", "nChunks", "kv"] as const) {
      if (saved.identity?.[key] !== mine[key]) {
        throw new PerplexityCheckpointError(this.file, `written by another run (${key}: ${JSON.stringify(saved.identity?.[key])} there, ${JSON.stringify(mine[key])} here); delete it to start over`);
      }
    }
    if (saved.tokensDone > 0) {
      session.loadState(this.stateFile);
      if (session.position !== saved.tokensDone) throw new PerplexityCheckpointError(this.file, `its KV state holds ${session.position} tokens, the checkpoint says ${saved.tokensDone}`);
    }
    return { chunk: saved.chunk, tokensDone: saved.tokensDone, sums: saved.sums };
  }

  /** Write a checkpoint if `everyMs` has passed since the last one (or `force`). */
  maybeWrite(session: Session, at: CheckpointPosition, force = false): boolean {
    if (!force && performance.now() - this.lastWrite < this.everyMs) return false;
    if (at.tokensDone > 0) session.saveState(this.stateFile);
    const body: CheckpointFile = { version: VERSION, identity: this.identity, ...at };
    writeFileAtomic(this.file, JSON.stringify(body) + "\n");
    this.lastWrite = performance.now();
    return true;
  }

  /** The run finished: its checkpoint is no longer needed. */
  remove(): void {
    rmSync(this.file, { force: true });
    rmSync(this.stateFile, { force: true });
  }
}
