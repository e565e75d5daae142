/**
 * Special tokens cut out of text before tokenizing (llama.cpp's tokenizer_st_partition): special tokens are tried
 * longest text first; each one is found in every text fragment left so far, and splits it into text, the token id,
 * text. User-defined tokens are always cut out; control and unknown tokens only with parseSpecial. A token with the
 * lstrip (rstrip) attribute also swallows the ASCII whitespace just before (after) it.
 */
import { StripFlag, TokenType, type Vocab } from "./vocab.js";

/** C's isspace for a byte: space, \t \n \v \f \r. */
function isAsciiSpace(code: number): boolean {
  return code === 0x20 || (code >= 0x09 && code <= 0x0d);
}

/** Text split around special tokens: byte-string pieces (never empty) and token ids, in order. */
export function splitSpecialTokens(vocab: Vocab, text: string, parseSpecial: boolean): (string | number)[] {
  let fragments: (string | number)[] = [text];
  for (const id of vocab.specialIds) {
    if (!parseSpecial && vocab.types[id] !== TokenType.USER_DEFINED) continue;
    const tokenText = vocab.texts[id]!;
    if (!fragments.some((f) => typeof f === "string" && f.includes(tokenText))) continue;
    const lstrip = (vocab.stripFlags[id]! & StripFlag.LSTRIP) !== 0;
    const rstrip = (vocab.stripFlags[id]! & StripFlag.RSTRIP) !== 0;
    const split: (string | number)[] = [];
    for (const fragment of fragments) {
      if (typeof fragment !== "string") {
        split.push(fragment);
        continue;
      }
      let from = 0;
      for (;;) {
        const at = fragment.indexOf(tokenText, from);
        if (at < 0) break;
        let leftEnd = at;
        if (lstrip) while (leftEnd > from && isAsciiSpace(fragment.charCodeAt(leftEnd - 1))) leftEnd--;
        if (leftEnd > from) split.push(fragment.slice(from, leftEnd));
        split.push(id);
        from = at + tokenText.length;
        if (rstrip) while (from < fragment.length && isAsciiSpace(fragment.charCodeAt(from))) from++;
      }
      if (from < fragment.length) split.push(fragment.slice(from));
    }
    fragments = split;
  }
  return fragments;
}
