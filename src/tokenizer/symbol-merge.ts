/**
 * The merge loop both llama.cpp tokenizers share (llm_tokenizer_spm and llm_tokenizer_bpe): a byte string is cut into
 * UTF-8 characters (the first symbols); every adjacent pair that may merge enters a priority queue; the best pair is
 * merged, its neighbours' new pairs are queued, stale entries are skipped, until the queue is empty. The caller says
 * which pairs may merge and how good each merge is (SPM: the merged token's score; BPE: the merge rank).
 */

/** Byte length of a UTF-8 sequence from its lead byte (llama.cpp's unicode_len_utf8: stray bytes count as 1). */
export function utf8SequenceLength(leadByte: number): number {
  const high = leadByte >> 4;
  return high < 12 ? 1 : high < 14 ? 2 : high === 14 ? 3 : 4;
}

/** Min-heap of candidate merges keyed (priority asc, left position asc). Parallel arrays instead of objects. */
export class PairQueue {
  private left: Int32Array = new Int32Array(64); // (capacity) left symbol index
  private right: Int32Array = new Int32Array(64); // (capacity) right symbol index
  private size_: Int32Array = new Int32Array(64); // (capacity) byte length of the merged text
  private priority: Float64Array = new Float64Array(64); // (capacity) lower merges first
  count = 0;

  clear(): void {
    this.count = 0;
  }

  private before(i: number, j: number): boolean {
    const pi = this.priority[i]!, pj = this.priority[j]!;
    return pi < pj || (pi === pj && this.left[i]! < this.left[j]!);
  }

  private swap(i: number, j: number): void {
    let t = this.left[i]!; this.left[i] = this.left[j]!; this.left[j] = t;
    t = this.right[i]!; this.right[i] = this.right[j]!; this.right[j] = t;
    t = this.size_[i]!; this.size_[i] = this.size_[j]!; this.size_[j] = t;
    const p = this.priority[i]!; this.priority[i] = this.priority[j]!; this.priority[j] = p;
  }

  push(left: number, right: number, priority: number, size: number): void {
    if (this.count === this.left.length) this.grow();
    let i = this.count++;
    this.left[i] = left; this.right[i] = right; this.priority[i] = priority; this.size_[i] = size;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top entry, writing it to `out` as [left, right, size]. */
  pop(out: Int32Array): void {
    out[0] = this.left[0]!; out[1] = this.right[0]!; out[2] = this.size_[0]!;
    const last = --this.count;
    if (last === 0) return;
    this.left[0] = this.left[last]!; this.right[0] = this.right[last]!;
    this.priority[0] = this.priority[last]!; this.size_[0] = this.size_[last]!;
    for (let i = 0; ; ) {
      const l = 2 * i + 1, r = l + 1;
      let best = i;
      if (l < last && this.before(l, best)) best = l;
      if (r < last && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
  }

  private grow(): void {
    const cap = this.left.length * 2;
    const left = new Int32Array(cap); left.set(this.left); this.left = left;
    const right = new Int32Array(cap); right.set(this.right); this.right = right;
    const size = new Int32Array(cap); size.set(this.size_); this.size_ = size;
    const priority = new Float64Array(cap); priority.set(this.priority); this.priority = priority;
  }
}

/**
 * Priority of merging two adjacent symbols of `text`: the left one is `text.substr(start, leftLen)`, the right one
 * follows it with `rightLen` bytes. Lower merges first; undefined: this pair never merges.
 */
export type MergePriority = (start: number, leftLen: number, rightLen: number) => number | undefined;

/** The symbols (byte strings, in order) left when `text` (a byte string) has been merged as far as `priorityOf` allows. */
export function mergeSymbols(text: string, priorityOf: MergePriority, queue = new PairQueue()): string[] {
  const nBytes = text.length;
  if (nBytes === 0) return [];
  const start = new Int32Array(nBytes); // (nSymbols) byte offset of each symbol
  const len = new Int32Array(nBytes); // (nSymbols) byte length; 0 once merged into its left neighbour
  const prev = new Int32Array(nBytes); // (nSymbols) previous live symbol, -1 at the start
  const next = new Int32Array(nBytes); // (nSymbols) next live symbol, -1 at the end
  let nSymbols = 0;
  for (let offset = 0; offset < nBytes; ) {
    const n = Math.min(utf8SequenceLength(text.charCodeAt(offset)), nBytes - offset);
    start[nSymbols] = offset;
    len[nSymbols] = n;
    prev[nSymbols] = nSymbols - 1;
    offset += n;
    next[nSymbols] = offset === nBytes ? -1 : nSymbols + 1;
    nSymbols++;
  }

  queue.clear();
  const tryAddPair = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const priority = priorityOf(start[left]!, len[left]!, len[right]!);
    if (priority !== undefined) queue.push(left, right, priority, len[left]! + len[right]!);
  };
  for (let i = 1; i < nSymbols; i++) tryAddPair(i - 1, i);

  const top = new Int32Array(3); // [left, right, size]
  while (queue.count > 0) {
    queue.pop(top);
    const left = top[0]!, right = top[1]!, size = top[2]!;
    // Stale: a side was merged away, or the right side grew (the left side never moves its start).
    if (len[left] === 0 || len[right] === 0 || len[left]! + len[right]! !== size) continue;
    len[left] = size;
    len[right] = 0;
    next[left] = next[right]!;
    if (next[right]! >= 0) prev[next[right]!] = left;
    tryAddPair(prev[left]!, left);
    tryAddPair(left, next[left]!);
  }

  const symbols: string[] = [];
  for (let i = 0; i !== -1; i = next[i]!) symbols.push(text.substr(start[i]!, len[i]!));
  return symbols;
}
