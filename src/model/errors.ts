/** Errors of model loading that are not about the GGUF container itself (that is GgufError). */
export class ModelError extends Error {
  constructor(
    message: string,
    readonly file: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "ModelError";
  }
}
