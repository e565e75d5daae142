/**
 * Pieces the tokenizer conformance tests share: our tokenizer loaded from a GGUF file, node-llama-cpp's token brand,
 * and a readable first difference between two id lists for failure messages.
 */
import type { Token } from "node-llama-cpp";
import { readGgufHeader } from "../../src/gguf/reader.js";
import { tokenizerFromGguf, type Tokenizer } from "../../src/tokenizer/index.js";

/** node-llama-cpp brands its token ids; ours are plain numbers. */
export const asTokens = (ids: readonly number[]): Token[] => ids as Token[];

/** Our tokenizer for the GGUF file at `path` (the file is closed again once its metadata is read). */
export function tokenizerFromFile(path: string): Tokenizer {
  return tokenizerFromGguf(readGgufHeader(path));
}

/** The first index where two id lists differ, with a little context, for failure messages. */
export function firstDifference(ours: readonly number[], theirs: readonly number[]): string {
  for (let i = 0; i < Math.max(ours.length, theirs.length); i++) {
    if (ours[i] !== theirs[i]) {
      return `first difference at ${i} of ${ours.length} / ${theirs.length}: ours ${JSON.stringify(ours.slice(Math.max(0, i - 3), i + 5))} llama.cpp ${JSON.stringify(theirs.slice(Math.max(0, i - 3), i + 5))}`;
    }
  }
  return "identical";
}
