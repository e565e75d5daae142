/**
 * How the CLI turns errors into one line on stderr and an exit code:
 *   2  bad arguments or bad input files (usage mistakes, missing or malformed files, unknown K/V configs)
 *   1  runtime failures (anything else)
 * Expected errors print their message only; a stack trace is printed for unexpected ones only with KVSPLIT_DEBUG=1.
 */

export const EXIT_OK = 0;
export const EXIT_RUNTIME = 1;
export const EXIT_BAD_INPUT = 2;

/** A bad command line: a missing, conflicting or out-of-range flag. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** An input file that is missing, unreadable or not what the command needs. */
export class InputFileError extends Error {
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = "InputFileError";
  }
}

/**
 * Errors that mean "the user gave us something wrong", by class name, so the CLI needs no import of every layer:
 * GGUF container errors, model/tokenizer metadata errors, K/V config and sampler option errors, and the CLI's own.
 */
const BAD_INPUT_ERRORS = new Set([
  "UsageError",
  "InputFileError",
  "GgufError",
  "ModelError",
  "TokenizerError",
  "KvConfigError",
  "KvFlagConflictError",
  "KvScheduleError",
  "UnknownFormatError",
  "SamplerOptionError",
  "ContextOverflowError",
  "ChatTemplateError",
  "StateFileError",
  "PerplexityCheckpointError",
  "SynthError",
  "MemoryPlanError",
  "ModelSpecError",
  "EvalInputError",
  "KldFileError",
]);

export function isBadInputError(err: unknown): boolean {
  return err instanceof Error && BAD_INPUT_ERRORS.has(err.name);
}

export function exitCodeFor(err: unknown): number {
  return isBadInputError(err) ? EXIT_BAD_INPUT : EXIT_RUNTIME;
}

/** One line for stderr: `kvsplit: error: <message>` (plus a stack for unexpected errors under KVSPLIT_DEBUG=1). */
export function describeError(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  const oneLine = message.trim().replace(/\s*\n\s*/g, "; ");
  let text = `kvsplit: error: ${oneLine}`;
  if (!isBadInputError(err) && process.env.KVSPLIT_DEBUG && err instanceof Error && err.stack) text += `\n${err.stack}`;
  return text;
}
