/**
 * The WebAssembly kernels and the one memory they work in.
 * Every kernel takes byte offsets into this memory; JS allocates those ranges with `alloc` and reads
 * or writes them through typed views that are re-created whenever the memory has grown.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { RangeAllocator } from "./allocator.js";

const PAGE = 65536;
/** WebAssembly memory is capped at 4 GiB (65536 pages of 64 KiB) without memory64. */
export const MAX_WASM_BYTES = 65536 * PAGE;

const wasmPath = fileURLToPath(new URL("../../../build/kernels.wasm", import.meta.url));

/** Kernel exports: byte offsets are plain numbers; see assembly/ for each signature. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KernelExports = Record<string, (...args: number[]) => any>;

let compiled: WebAssembly.Module | undefined;
export function kernelModule(): WebAssembly.Module {
  compiled ??= new WebAssembly.Module(readFileSync(wasmPath));
  return compiled;
}

export interface WasmRuntimeOptions {
  /** Bytes this memory may grow to (default and at most MAX_WASM_BYTES): a smaller limit forces sharding in tests. */
  maxBytes?: number;
  /** Its index among a model's memories (src/runtime/shards.ts), what pool tasks name it by (default 0). */
  shard?: number;
}

export class WasmRuntime {
  readonly memory: WebAssembly.Memory;
  readonly k: KernelExports;
  /** Bytes the allocator may hand out up to (offsets below this). */
  readonly maxBytes: number;
  /** Index of this memory in its model's shard list and in the thread pool. */
  readonly shard: number;
  private readonly allocator: RangeAllocator;

  constructor(memory?: WebAssembly.Memory, opts: WasmRuntimeOptions = {}) {
    this.maxBytes = opts.maxBytes ?? MAX_WASM_BYTES;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes <= 0 || this.maxBytes > MAX_WASM_BYTES) {
      throw new RangeError(`a WebAssembly memory holds 1 .. ${MAX_WASM_BYTES} bytes, asked for ${opts.maxBytes}`);
    }
    this.shard = opts.shard ?? 0;
    this.memory = memory ?? new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const instance = new WebAssembly.Instance(kernelModule(), { env: { memory: this.memory, abort: wasmAbort } });
    this.k = instance.exports as unknown as KernelExports;
    this.allocator = new RangeAllocator(Number(this.k.heapBase()));
  }

  /** Bytes still free for allocations: below maxBytes, above the high-water mark (freed holes not counted). */
  get freeBytes(): number {
    return this.maxBytes - this.allocator.highWater;
  }

  /** Allocate `bytes` (aligned to `align`, default 64) and grow the memory if needed. Throws past maxBytes. */
  alloc(bytes: number, align = 64): number {
    const ptr = this.allocator.alloc(bytes, align);
    const need = this.allocator.highWater;
    if (need > this.maxBytes) {
      this.allocator.freeBlock(ptr);
      throw new WasmMemoryError(need, this.maxBytes);
    }
    const have = this.memory.buffer.byteLength;
    if (need > have) this.memory.grow(Math.ceil((need - have) / PAGE));
    return ptr;
  }

  /** Bytes of the memory in use: the highest allocated offset (freed ranges below it are reused first). */
  get usedBytes(): number {
    return this.allocator.highWater;
  }

  free(ptr: number): void {
    this.allocator.freeBlock(ptr);
  }

  /** Views over [ptr, ptr + count elements). Re-created per call: the buffer object changes when memory grows. */
  f32(ptr: number, count: number): Float32Array {
    return new Float32Array(this.memory.buffer, ptr, count);
  }
  u8(ptr: number, count: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, ptr, count);
  }
  i32(ptr: number, count: number): Int32Array {
    return new Int32Array(this.memory.buffer, ptr, count);
  }
  u16(ptr: number, count: number): Uint16Array {
    return new Uint16Array(this.memory.buffer, ptr, count);
  }
}

export class WasmMemoryError extends Error {
  constructor(
    readonly neededBytes: number,
    readonly maxBytes = MAX_WASM_BYTES,
  ) {
    super(`needs ${neededBytes} bytes of WebAssembly memory; this memory holds at most ${maxBytes} bytes`);
    this.name = "WasmMemoryError";
  }
}

function wasmAbort(): never {
  throw new Error("WebAssembly kernel aborted");
}

let shared: WasmRuntime | undefined;
/** A process-wide runtime for tests and one-off use; models create their own. */
export function defaultRuntime(): WasmRuntime {
  shared ??= new WasmRuntime();
  return shared;
}
