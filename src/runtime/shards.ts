/**
 * Several WebAssembly memories ("shards") for one model: a memory holds at most 4 GiB (no memory64 in
 * AssemblyScript), so weights and KV caches past that are spread over several, each with its own kernel instance on
 * the calling thread and on every worker of ONE thread pool (a task names its shard). Activations (a few KB per
 * token) are copied between shards; nothing else crosses.
 *
 * Shards are added when something does not fit in the existing ones (a model's weights at load, a session's KV cache
 * at creation); an added shard costs the pool a restart of its workers (see ThreadPool.addMemory).
 */
import { ThreadPool } from "./pool.js";
import { MAX_WASM_BYTES, WasmRuntime } from "./wasm.js";

/** The environment variable that lowers the shard limit (bytes), so tests can force sharding on a tiny model. */
export const SHARD_BYTES_ENV = "KVSPLIT_SHARD_BYTES";

/** The shard limit from the environment when set (a positive integer up to 4 GiB), else 4 GiB. */
export function defaultShardBytes(): number {
  const raw = typeof process === "undefined" ? undefined : process.env[SHARD_BYTES_ENV];
  if (raw === undefined || raw === "") return MAX_WASM_BYTES;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 << 20 || n > MAX_WASM_BYTES) {
    throw new RangeError(`${SHARD_BYTES_ENV}=${raw}: expected a whole number of bytes from ${1 << 20} to ${MAX_WASM_BYTES}`);
  }
  return n;
}

export class Shards {
  /** One runtime (memory + kernel instance + allocator) per shard, in shard order. */
  readonly runtimes: WasmRuntime[];
  /** Threads over every shard's memory. */
  readonly pool: ThreadPool;

  constructor(
    /** Bytes each memory may hold (at most 4 GiB). */
    readonly shardBytes: number,
    threads: number,
  ) {
    const first = new WasmRuntime(undefined, { maxBytes: shardBytes, shard: 0 });
    this.runtimes = [first];
    this.pool = new ThreadPool(first.memory, threads, first.module);
  }

  /** A new, empty shard (its memory joins the pool). */
  add(): WasmRuntime {
    const rt = new WasmRuntime(undefined, { maxBytes: this.shardBytes, shard: this.runtimes.length, module: this.runtimes[0].module });
    const index = this.pool.addMemory(rt.memory);
    if (index !== rt.shard) throw new Error(`shard ${rt.shard} joined the pool as memory ${index}`);
    this.runtimes.push(rt);
    return rt;
  }

  /** The first shard with at least `bytes` free, adding one when none has. */
  withRoom(bytes: number, from = 0): WasmRuntime {
    for (let s = from; s < this.runtimes.length; s++) if (this.runtimes[s].freeBytes >= bytes) return this.runtimes[s];
    return this.add();
  }

  /** Bytes handed out in every shard together (high-water marks). */
  get usedBytes(): number {
    return this.runtimes.reduce((sum, rt) => sum + rt.usedBytes, 0);
  }

  dispose(): void {
    this.pool.dispose();
  }
}
