/**
 * Scalar number helpers shared by the reference formats, each reproducing llama.cpp's exact rounding:
 *   fp32 -> fp16: round to nearest, ties to even; overflow -> ±inf; NaN -> sign | 0x7e00 (payload dropped)
 *   fp32 -> bf16: round to nearest, ties to even; NaN -> (bits >> 16) | 0x40 (quietened, payload kept)
 *   roundf: half away from zero (C's roundf, used by q8_0 / q8_1)
 * All arithmetic that llama.cpp does in `float` is done here through Math.fround: a double result of one
 * +, -, *, / on two floats rounded once to float equals the float operation (53 >= 2*24 + 2).
 */

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** The IEEE binary32 bit pattern of `value` (rounded to float first). */
export function f32Bits(value: number): number {
  f32Scratch[0] = value;
  return u32Scratch[0];
}

export function f32FromBits(bits: number): number {
  u32Scratch[0] = bits >>> 0;
  return f32Scratch[0];
}

/** fp32 -> fp16 bits exactly as ggml's GGML_FP32_TO_FP16. */
export function f32ToF16Bits(value: number): number {
  const w = f32Bits(value);
  const sign = (w >>> 16) & 0x8000;
  const magnitude = w & 0x7fffffff;
  if (magnitude > 0x7f800000) return sign | 0x7e00;
  const exponent = (magnitude >>> 23) - 127;
  if (exponent > 15) return sign | 0x7c00;
  if (exponent < -14) {
    // Subnormal half: the value in units of 2^-24, rounded half to even (exact in double).
    const units = Math.abs(f32FromBits(magnitude)) * 16777216;
    let whole = Math.floor(units);
    const rest = units - whole;
    if (rest > 0.5 || (rest === 0.5 && (whole & 1) === 1)) whole++;
    return sign | whole;
  }
  const mantissa = magnitude & 0x7fffff;
  let half = ((exponent + 15) << 10) | (mantissa >>> 13);
  const dropped = mantissa & 0x1fff;
  if (dropped > 0x1000 || (dropped === 0x1000 && (half & 1) === 1)) half++; // a carry into the exponent is correct
  return sign | half;
}

/** fp16 bits -> value, for every one of the 65536 patterns (NaNs decode to NaN). */
const F16_TABLE = buildF16Table();

function buildF16Table(): Float32Array {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exponent = (h >>> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0) table[h] = sign * mantissa * 2 ** -24;
    else if (exponent === 31) table[h] = mantissa === 0 ? sign * Infinity : NaN;
    else table[h] = sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
  }
  return table;
}

export function f16BitsToF32(bits: number): number {
  return F16_TABLE[bits & 0xffff];
}

/** fp32 -> bf16 bits exactly as ggml's GGML_FP32_TO_BF16. */
export function f32ToBf16Bits(value: number): number {
  const w = f32Bits(value);
  if ((w & 0x7fffffff) > 0x7f800000) return ((w >>> 16) | 0x40) & 0xffff;
  return ((w + 0x7fff + ((w >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16BitsToF32(bits: number): number {
  return f32FromBits((bits & 0xffff) << 16);
}

/** C's roundf: nearest integer, halfway cases away from zero. Exact for every float input. */
export function roundHalfAwayFromZero(x: number): number {
  const whole = Math.trunc(x);
  const fraction = Math.abs(x - whole);
  return fraction >= 0.5 ? whole + Math.sign(x) : whole;
}

/** Little-endian u16 at `offset`. */
export function readU16(bytes: Uint8Array, offset: number): number {
  return bytes[offset] | (bytes[offset + 1] << 8);
}

export function writeU16(bytes: Uint8Array, offset: number, value: number): void {
  bytes[offset] = value & 0xff;
  bytes[offset + 1] = (value >>> 8) & 0xff;
}

/** The fp16 scale stored at `offset`, as a float. */
export function readF16(bytes: Uint8Array, offset: number): number {
  return f16BitsToF32(readU16(bytes, offset));
}

/** Store `value` as fp16 at `offset` (ggml rounding) and return the float the stored bits mean. */
export function writeF16(bytes: Uint8Array, offset: number, value: number): number {
  const bits = f32ToF16Bits(value);
  writeU16(bytes, offset, bits);
  return f16BitsToF32(bits);
}

/** A little-endian float32 view of `bytes` (copied when the offset is not 4-aligned). */
export function bytesAsF32(bytes: Uint8Array, count: number): Float32Array {
  if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, count);
  return new Float32Array(bytes.slice(0, count * 4).buffer, 0, count);
}

/** Throws unless `n` is a whole, non-negative number of `blockSize`-value blocks. */
export function checkWholeBlocks(format: string, n: number, blockSize: number): number {
  if (!Number.isInteger(n) || n < 0 || n % blockSize !== 0) {
    throw new RangeError(`${format}: ${n} values is not a whole number of ${blockSize}-value blocks`);
  }
  return n / blockSize;
}

/** Throws unless a byte buffer holds at least `need` bytes. */
export function checkBytes(format: string, what: string, have: number, need: number): void {
  if (have < need) throw new RangeError(`${format}: ${what} holds ${have} bytes, needs ${need}`);
}
