/**
 * First-fit allocator over a range of byte offsets in WebAssembly memory.
 * It hands out offsets only; growing the memory is the caller's job (see wasm.ts).
 */
export class RangeAllocator {
  /** Free ranges sorted by start: [start, end) pairs. */
  private free: Array<{ start: number; end: number }> = [];
  private top: number;
  /** The end of the highest range ever handed out: no offset at or above it has been given to anyone yet. */
  private reached: number;

  constructor(base: number) {
    this.top = base;
    this.reached = base;
  }

  /** Highest offset in use (exclusive): memory must be at least this large. */
  get highWater(): number {
    return this.top;
  }

  /** Offsets at or above this have never been handed out (the top drops back when its ranges are freed; this does not). */
  get neverUsedFrom(): number {
    return this.reached;
  }

  alloc(bytes: number, align: number): number {
    if (!Number.isInteger(bytes) || bytes < 0) throw new RangeError(`allocation size must be a non-negative integer, got ${bytes}`);
    const size = Math.max(bytes, 1);
    for (let i = 0; i < this.free.length; i++) {
      const r = this.free[i];
      const start = alignUp(r.start, align);
      if (start + size <= r.end) {
        const tail = { start: start + size, end: r.end };
        const head = { start: r.start, end: start };
        const keep = [head, tail].filter((x) => x.end > x.start);
        this.free.splice(i, 1, ...keep);
        this.sizes.set(start, size);
        return start;
      }
    }
    const start = alignUp(this.top, align);
    if (start > this.top) this.release(this.top, start);
    this.top = start + size;
    this.reached = Math.max(this.reached, this.top);
    this.sizes.set(start, size);
    return start;
  }

  freeBlock(ptr: number): void {
    const size = this.sizes.get(ptr);
    if (size === undefined) throw new Error(`free of an offset that was not allocated: ${ptr}`);
    this.sizes.delete(ptr);
    this.release(ptr, ptr + size);
  }

  private sizes = new Map<number, number>();

  private release(start: number, end: number): void {
    let i = 0;
    while (i < this.free.length && this.free[i].start < start) i++;
    this.free.splice(i, 0, { start, end });
    // merge with neighbours
    if (i + 1 < this.free.length && this.free[i].end === this.free[i + 1].start) {
      this.free[i].end = this.free[i + 1].end;
      this.free.splice(i + 1, 1);
    }
    if (i > 0 && this.free[i - 1].end === this.free[i].start) {
      this.free[i - 1].end = this.free[i].end;
      this.free.splice(i, 1);
    }
    // give the last range back to the top
    const last = this.free[this.free.length - 1];
    if (last && last.end === this.top) {
      this.top = last.start;
      this.free.pop();
    }
  }
}

export function alignUp(x: number, align: number): number {
  return Math.ceil(x / align) * align;
}
