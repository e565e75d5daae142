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

export class WasmRuntime {
  readonly memory: WebAssembly.Memory;
  readonly k: KernelExports;
  private readonly allocator: RangeAllocator;

  constructor(memory?: WebAssembly.Memory) {
    this.memory = memory ?? new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: true });
    const instance = new WebAssembly.Instance(kernelModule(), { env: { memory: this.memory, abort: wasmAbort } });
    this.k = instance.exports as unknown as KernelExports;
    this.allocator = new RangeAllocator(Number(this.k.heapBase()));
  }

  /** Allocate `bytes` (aligned to `align`, default 64) and grow the memory if needed. Throws past 4 GiB. */
  alloc(bytes: number, align = 64): number {
    const ptr = this.allocator.alloc(bytes, align);
    const need = this.allocator.highWater;
    if (need > MAX_WASM_BYTES) {
      this.allocator.freeBlock(ptr);
      throw new WasmMemoryError(need);
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
  constructor(readonly neededBytes: number) {
    super(`needs ${neededBytes} bytes of WebAssembly memory; one memory holds at most ${MAX_WASM_BYTES} bytes (4 GiB)`);
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
