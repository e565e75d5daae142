/**
 * The WebAssembly kernels and the one memory they work in.
 * Every kernel takes byte offsets into this memory; JS allocates those ranges with `alloc` and reads
 * or writes them through typed views that are re-created whenever the memory has grown.
 */
import { RangeAllocator } from "./allocator.js";
import { kernelBytes } from "./kernel-bytes.js";

const PAGE = 65536;
/** WebAssembly memory is capped at 4 GiB (65536 pages of 64 KiB) without memory64. */
export const MAX_WASM_BYTES = 65536 * PAGE;

/** Kernel exports: byte offsets are plain numbers; see assembly/ for each signature. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type KernelExports = Record<string, (...args: number[]) => any>;

/**
 * The builds of assembly/ (package.json build:wasm): the same source compiled with plain SIMD, and with relaxed
 * SIMD added (the K-quant dots use i32x4.relaxed_dot_i8x16_i7x16_add_s / i16x8.relaxed_dot_i8x16_i7x16_s there, with
 * operands chosen so that every result is exact; both builds give the same bits). One is chosen per process.
 * A third, "single", is the plain build over an unshared memory: for a web page without cross-origin isolation, which
 * has no shared memory and so runs on one thread (src/web/engine-worker.ts chooses it with useKernelVariant).
 */
export type KernelVariant = "plain" | "relaxed" | "single";

/** Chooses the build: unset (or empty) picks relaxed where the runtime has it, "0" forces plain, "1" forces relaxed. */
export const RELAXED_ENV = "KVSPLIT_WASM_RELAXED";

/** A module of one function, `v128.const 0` three times, i32x4.relaxed_dot_i8x16_i7x16_add_s (0xfd 0x113), drop. */
const RELAXED_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version 1
  0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type section: one type, () -> ()
  0x03, 0x02, 0x01, 0x00, // function section: one function of type 0
  0x0a, 0x3e, 0x01, 0x3c, 0x00, // code section (62 bytes): one body of 60 bytes, no locals
  ...[0, 1, 2].flatMap(() => [0xfd, 0x0c, ...new Array<number>(16).fill(0)]), // v128.const 0 (×3)
  0xfd, 0x93, 0x02, 0x1a, 0x0b, // i32x4.relaxed_dot_i8x16_i7x16_add_s, drop, end
]);

/**
 * The first V8 that ships relaxed SIMD by default (11.4, Chrome 114). Older ones have it only behind
 * --experimental-wasm-relaxed-simd, and Node 20's (11.3) baseline compiler, Liftoff, then returned wrong sums for
 * i32x4.relaxed_dot_i8x16_i7x16_add_s: the flag must not opt Node 20 in.
 */
const RELAXED_SIMD_V8: readonly [number, number] = [11, 4];

/** Whether this runtime has relaxed SIMD as shipped (Node 22+: yes; Node 20: no, flag or not; a browser: if it validates). */
export function relaxedSimdSupported(): boolean {
  const v8 = typeof process === "undefined" ? undefined : process.versions?.v8;
  if (v8 === undefined) return WebAssembly.validate(RELAXED_PROBE); // browsers ship it as standardised (Chrome 114+)
  const [major, minor] = v8.split(".").map(Number);
  const shipped = major > RELAXED_SIMD_V8[0] || (major === RELAXED_SIMD_V8[0] && minor >= RELAXED_SIMD_V8[1]);
  return shipped && WebAssembly.validate(RELAXED_PROBE);
}

/** The build `env` asks for (see RELAXED_ENV); throws if it forces relaxed SIMD where the runtime lacks it. */
export function selectKernelVariant(env: NodeJS.ProcessEnv = typeof process === "undefined" ? {} : process.env, supported = relaxedSimdSupported()): KernelVariant {
  const forced = env[RELAXED_ENV];
  if (forced === undefined || forced === "") return supported ? "relaxed" : "plain";
  if (forced === "0") return "plain";
  if (forced !== "1") throw new Error(`${RELAXED_ENV} must be 0 (plain SIMD kernels) or 1 (relaxed SIMD kernels), got '${forced}'`);
  if (!supported) throw new Error(`${RELAXED_ENV}=1 but this runtime (Node ${process.versions?.node}) does not support WebAssembly relaxed SIMD`);
  return "relaxed";
}

let variant: KernelVariant | undefined;
/** The build this process uses: chosen once, at the first call (from process.env and the runtime). */
export function kernelVariant(): KernelVariant {
  variant ??= selectKernelVariant();
  return variant;
}

/** Choose the build before anything is instantiated (a web page: "single" without cross-origin isolation). */
export function useKernelVariant(which: KernelVariant): void {
  if (variant !== undefined && variant !== which) throw new Error(`the ${variant} kernel build is already in use; cannot switch to ${which}`);
  variant = which;
}

/** Whether a build works on a shared memory (every build but "single"). */
export function variantSharesMemory(which: KernelVariant): boolean {
  return which !== "single";
}

const compiled: Partial<Record<KernelVariant, WebAssembly.Module>> = {};
/** One build's compiled module (compiled once; tests and benchmarks load both). */
export function loadKernelModule(which: KernelVariant): WebAssembly.Module {
  return (compiled[which] ??= new WebAssembly.Module(kernelBytes(which) as Uint8Array<ArrayBuffer>));
}

/** The module of this process's build (kernelVariant()): every runtime, pool and worker instantiates this one. */
export function kernelModule(): WebAssembly.Module {
  return loadKernelModule(kernelVariant());
}

export interface WasmRuntimeOptions {
  /** Bytes this memory may grow to (default and at most MAX_WASM_BYTES): a smaller limit forces sharding in tests. */
  maxBytes?: number;
  /** Its index among a model's memories (src/runtime/shards.ts), what pool tasks name it by (default 0). */
  shard?: number;
  /** The kernel build to instantiate (default: this process's, kernelModule()). */
  module?: WebAssembly.Module;
}

export class WasmRuntime {
  readonly memory: WebAssembly.Memory;
  readonly k: KernelExports;
  /** Bytes the allocator may hand out up to (offsets below this). */
  readonly maxBytes: number;
  /** Index of this memory in its model's shard list and in the thread pool. */
  readonly shard: number;
  /** The kernel build instantiated here (a pool over this memory must use the same). */
  readonly module: WebAssembly.Module;
  private readonly allocator: RangeAllocator;
  /** The memory was created here, so every byte above the heap base nobody was handed reads as 0. */
  private readonly ownsMemory: boolean;

  constructor(memory?: WebAssembly.Memory, opts: WasmRuntimeOptions = {}) {
    this.maxBytes = opts.maxBytes ?? MAX_WASM_BYTES;
    if (!Number.isInteger(this.maxBytes) || this.maxBytes <= 0 || this.maxBytes > MAX_WASM_BYTES) {
      throw new RangeError(`a WebAssembly memory holds 1 .. ${MAX_WASM_BYTES} bytes, asked for ${opts.maxBytes}`);
    }
    this.shard = opts.shard ?? 0;
    this.module = opts.module ?? kernelModule();
    this.ownsMemory = memory === undefined;
    this.memory = memory ?? new WebAssembly.Memory({ initial: 16, maximum: 65536, shared: opts.module ? opts.module !== compiled.single : variantSharesMemory(kernelVariant()) });
    const instance = new WebAssembly.Instance(this.module, { env: { memory: this.memory, abort: wasmAbort } });
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

  /**
   * alloc, the range reading as zeros. WebAssembly memory starts and grows zeroed, so only the part handed out before
   * (a reused range) is cleared: a large cache's pages are then not touched until they are written (the OS maps them
   * on first use), which keeps start-up fast and the resident memory to what is used.
   */
  allocZeroed(bytes: number, align = 64): number {
    const pristineFrom = this.ownsMemory ? this.allocator.neverUsedFrom : Infinity;
    const ptr = this.alloc(bytes, align);
    const dirtyEnd = Math.min(ptr + bytes, pristineFrom);
    if (dirtyEnd > ptr) this.u8(ptr, dirtyEnd - ptr).fill(0);
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

/**
 * dst.set(src, at) for floats read out of a WebAssembly memory, copied as bytes: V8 copies a Float32Array view of a
 * large shared memory element by element (four rows of 32000 logits: 1.4 ms as floats, 0.06 ms as bytes, Node 24).
 */
export function copyFloats(dst: Float32Array, src: Float32Array, at = 0): void {
  new Uint8Array(dst.buffer, dst.byteOffset + at * 4, src.byteLength).set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength));
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
