/** The one error type the GGUF reader throws for anything wrong with a file. */

export type GgufErrorCode =
  | "not_gguf"
  | "unsupported_version"
  | "truncated"
  | "limit_exceeded"
  | "bad_value"
  | "out_of_bounds"
  | "unknown_tensor_type"
  | "duplicate_tensor"
  | "bad_alignment"
  /** A metadata key asked for by a typed getter is absent. */
  | "missing_key"
  /** A metadata value has another type than a typed getter asked for. */
  | "wrong_type";

export class GgufError extends Error {
  constructor(
    readonly code: GgufErrorCode,
    /** Name of the source (file path). */
    readonly file: string,
    /** Absolute byte offset the problem was found at. */
    readonly offset: number,
    readonly expected: string,
    readonly found: string,
    /** What was being read, e.g. "tensor 'blk.0.attn_q.weight' dimension 1". */
    readonly what: string,
  ) {
    super(`${file}: ${code} ${offset >= 0 ? `at byte ${offset}` : "(no byte offset)"} (${what}): expected ${expected}, found ${found}`);
    this.name = "GgufError";
  }
}
