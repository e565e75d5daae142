/**
 * GPT-2's byte-level encoding, as llama.cpp applies it to BPE vocabularies: every byte 0..255 is shown as one
 * printable Unicode character, so that token texts never hold raw control bytes or spaces.
 *
 * Bytes '!'..'~', '¡'..'¬' and '®'..'ÿ' stand for themselves (code point = byte); the 68 others, in increasing byte
 * order, become U+0100, U+0101, ... (so ' ' is 'Ġ' U+0120 and '\n' is 'Ċ' U+010A).
 *
 * Everything here works on "byte strings" (one JS char per UTF-8 byte, as Vocab stores token texts).
 */

function standsForItself(byte: number): boolean {
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

/** (256) the code point that shows each byte. */
export const BYTE_TO_CODE_POINT: readonly number[] = (() => {
  const out: number[] = new Array(256);
  let next = 0x100;
  for (let b = 0; b < 256; b++) out[b] = standsForItself(b) ? b : next++;
  return out;
})();

/** Code point → byte, for the 256 code points of BYTE_TO_CODE_POINT. */
const CODE_POINT_TO_BYTE: ReadonlyMap<number, number> = new Map(BYTE_TO_CODE_POINT.map((cp, b) => [cp, b]));

/** UTF-8 of a code point as a byte string (llama.cpp's unicode_cpt_to_utf8). */
export function codePointToUtf8(cp: number): string {
  if (cp < 0x80) return String.fromCharCode(cp);
  if (cp < 0x800) return String.fromCharCode(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  if (cp < 0x10000) return String.fromCharCode(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  return String.fromCharCode(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
}

/** (256) each byte's encoded character as a byte string (1 or 2 UTF-8 bytes). */
export const BYTE_TO_ENCODED: readonly string[] = BYTE_TO_CODE_POINT.map(codePointToUtf8);

/**
 * Code points of a UTF-8 byte string, as llama.cpp's unicode_cpts_from_utf8 reads them: a sequence whose lead byte
 * or continuation bytes are wrong gives U+FFFD and skips one byte; overlong forms and surrogates are not checked.
 */
export function codePointsFromUtf8(bytes: string): number[] {
  const out: number[] = [];
  const n = bytes.length;
  const cont = (i: number): boolean => i < n && (bytes.charCodeAt(i) & 0xc0) === 0x80;
  for (let i = 0; i < n; ) {
    const b0 = bytes.charCodeAt(i);
    if (b0 < 0x80) {
      out.push(b0);
      i += 1;
    } else if ((b0 & 0x40) === 0) {
      out.push(0xfffd);
      i += 1;
    } else if ((b0 & 0x20) === 0) {
      if (!cont(i + 1)) { out.push(0xfffd); i += 1; continue; }
      out.push(((b0 & 0x1f) << 6) | (bytes.charCodeAt(i + 1) & 0x3f));
      i += 2;
    } else if ((b0 & 0x10) === 0) {
      if (!cont(i + 1) || !cont(i + 2)) { out.push(0xfffd); i += 1; continue; }
      out.push(((b0 & 0x0f) << 12) | ((bytes.charCodeAt(i + 1) & 0x3f) << 6) | (bytes.charCodeAt(i + 2) & 0x3f));
      i += 3;
    } else if ((b0 & 0x08) === 0) {
      if (!cont(i + 1) || !cont(i + 2) || !cont(i + 3)) { out.push(0xfffd); i += 1; continue; }
      out.push(((b0 & 0x07) << 18) | ((bytes.charCodeAt(i + 1) & 0x3f) << 12) | ((bytes.charCodeAt(i + 2) & 0x3f) << 6) | (bytes.charCodeAt(i + 3) & 0x3f));
      i += 4;
    } else {
      out.push(0xfffd);
      i += 1;
    }
  }
  return out;
}

/** Byte-level encoding of raw bytes (a byte string): each byte becomes its encoded character's UTF-8 bytes. */
export function byteLevelEncode(raw: string): string {
  let out = "";
  for (let i = 0; i < raw.length; i++) out += BYTE_TO_ENCODED[raw.charCodeAt(i)]!;
  return out;
}

/**
 * The raw bytes a byte-level token text stands for (llama.cpp's llama_decode_text). A character outside the map
 * renders as "[UNK_BYTE_0x" + its UTF-8 bytes in lower-case hex + the whole token text + "]", as llama.cpp does.
 */
export function byteLevelDecode(text: string): string {
  let out = "";
  for (const cp of codePointsFromUtf8(text)) {
    const byte = CODE_POINT_TO_BYTE.get(cp);
    if (byte !== undefined) {
      out += String.fromCharCode(byte);
      continue;
    }
    const utf8 = codePointToUtf8(cp);
    let hex = "";
    for (let i = 0; i < utf8.length; i++) hex += utf8.charCodeAt(i).toString(16).padStart(2, "0");
    out += `[UNK_BYTE_0x${hex}${text}]`;
  }
  return out;
}
