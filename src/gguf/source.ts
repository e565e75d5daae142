/** Byte sources for the GGUF reader: a file read in bounded chunks (works past 2 GiB), or an in-memory buffer. */
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { ByteSource } from "./types.js";

/** Largest single readSync call (Node caps one read below 2 GiB). */
const MAX_READ_CHUNK = 1 << 30;

export interface FileSource extends ByteSource {
  close(): void;
}

export function fileSource(path: string): FileSource {
  const fd = openSync(path, "r");
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  let open = true;
  const readInto = (offset: number, target: Uint8Array): void => {
    if (!open) throw new Error(`${path}: read after close`);
    const length = target.length;
    checkRange(path, size, offset, length);
    let done = 0;
    while (done < length) {
      const want = Math.min(MAX_READ_CHUNK, length - done);
      const got = readSync(fd, target, done, want, offset + done);
      if (got === 0) throw new Error(`${path}: file shrank while reading at byte ${offset + done}`);
      done += got;
    }
  };
  return {
    name: path,
    size,
    read(offset: number, length: number): Uint8Array {
      const out = new Uint8Array(length);
      readInto(offset, out);
      return out;
    },
    readInto,
    close(): void {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** A source over bytes already in memory; reads return views (no copy). */
export function bufferSource(bytes: Uint8Array, name = "<buffer>"): ByteSource {
  return {
    name,
    size: bytes.length,
    read(offset: number, length: number): Uint8Array {
      checkRange(name, bytes.length, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
}

function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`${name}: read of ${length} bytes at ${offset} is outside the source's ${size} bytes`);
  }
}
