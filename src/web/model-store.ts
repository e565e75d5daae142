/**
 * Model bytes in a browser, read synchronously by the engine worker (the GGUF reader and weight loader are
 * synchronous): a File through FileReaderSync, or a URL downloaded once into the Origin Private File System (OPFS)
 * and read through a sync access handle. A download goes in Range requests of DOWNLOAD_CHUNK bytes written straight
 * to the OPFS file (no buffer of the whole model: files past 2 GB load), resumes after an interruption, and a later
 * page load finds the complete file and downloads nothing.
 */
import type { ByteSource } from "../gguf/types.js";

/** Bytes per Range request. */
const DOWNLOAD_CHUNK = 32 * 1024 * 1024;
const STORE_DIR = "kvsplit-models";

export class ModelSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ModelSourceError";
  }
}

export interface ClosableSource extends ByteSource {
  close(): void;
  /** True when a URL's bytes were already in the OPFS cache. */
  readonly fromCache: boolean;
}

export type Progress = (done: number, total: number) => void;

/** A File (picker or drag and drop) read in slices. */
export function fileSource(file: File): ClosableSource {
  const reader = new FileReaderSync();
  const source: ClosableSource = {
    name: file.name,
    size: file.size,
    fromCache: false,
    read(offset: number, length: number): Uint8Array {
      checkRange(file.name, file.size, offset, length);
      return new Uint8Array(reader.readAsArrayBuffer(file.slice(offset, offset + length)));
    },
    close(): void {},
  };
  checkMagic(file.name, source.read(0, Math.min(4, file.size)));
  return source;
}

interface StoreEntry {
  url: string;
  size: number;
  complete: boolean;
}

/** The OPFS file name of a URL: hex SHA-256 of the absolute URL. */
async function storeName(url: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(url)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

async function storeDir(): Promise<FileSystemDirectoryHandle> {
  if (!navigator.storage?.getDirectory) throw new ModelSourceError("this browser has no Origin Private File System to cache models in");
  return (await navigator.storage.getDirectory()).getDirectoryHandle(STORE_DIR, { create: true });
}

async function readEntry(dir: FileSystemDirectoryHandle, name: string): Promise<StoreEntry | undefined> {
  try {
    const file = await (await dir.getFileHandle(`${name}.json`)).getFile();
    return JSON.parse(await file.text()) as StoreEntry;
  } catch {
    return undefined;
  }
}

async function writeEntry(dir: FileSystemDirectoryHandle, name: string, entry: StoreEntry): Promise<void> {
  const access = await (await dir.getFileHandle(`${name}.json`, { create: true })).createSyncAccessHandle();
  try {
    const bytes = new TextEncoder().encode(JSON.stringify(entry));
    access.truncate(0);
    access.write(bytes, { at: 0 });
    access.flush();
  } finally {
    access.close();
  }
}

/** "bytes 0-99/1234" → 1234. */
function totalOfContentRange(header: string | null): number | undefined {
  const m = /\/(\d+)\s*$/.exec(header ?? "");
  return m ? Number(m[1]) : undefined;
}

function checkMagic(name: string, first: Uint8Array): void {
  const head = first.subarray(0, 4);
  if (String.fromCharCode(...head) === "GGUF") return;
  const printable = head.every((b) => b >= 0x20 && b < 0x7f);
  const shown = printable ? JSON.stringify(String.fromCharCode(...head)) : `bytes ${Array.from(head, (b) => b.toString(16).padStart(2, "0")).join(" ")}`;
  throw new ModelSourceError(`${name}: not a GGUF file (it starts with ${shown}; a GGUF file starts with "GGUF")`);
}

/**
 * The URL's bytes from the OPFS cache, downloading what is missing first. Throws ModelSourceError on an HTTP error,
 * a server that changes the file's size, or bytes that are not a GGUF file.
 */
export async function urlSource(url: string, onProgress: Progress): Promise<ClosableSource> {
  const absolute = new URL(url, self.location.href).href;
  const dir = await storeDir();
  const name = await storeName(absolute);
  let entry = await readEntry(dir, name);
  const fromCache = entry?.complete === true;
  const access = await (await dir.getFileHandle(`${name}.gguf`, { create: true })).createSyncAccessHandle();
  try {
    if (!fromCache) entry = await download(absolute, access, entry, onProgress, (e) => writeEntry(dir, name, e));
    const size = access.getSize();
    if (size !== entry!.size) throw new ModelSourceError(`${absolute}: the cached copy has ${size} bytes, expected ${entry!.size}`);
    const source: ClosableSource = {
      name: absolute.split("/").pop() || absolute,
      size,
      fromCache,
      read(offset: number, length: number): Uint8Array {
        checkRange(absolute, size, offset, length);
        const out = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const got = access.read(out.subarray(done), { at: offset + done });
          if (got === 0) throw new ModelSourceError(`${absolute}: the cached copy ended at byte ${offset + done}`);
          done += got;
        }
        return out;
      },
      close: () => access.close(),
    };
    checkMagic(absolute, source.read(0, Math.min(4, size)));
    return source;
  } catch (e) {
    access.close();
    throw e;
  }
}

async function download(
  url: string,
  access: FileSystemSyncAccessHandle,
  known: StoreEntry | undefined,
  onProgress: Progress,
  save: (entry: StoreEntry) => Promise<void>,
): Promise<StoreEntry> {
  // A partial file from an interrupted download continues where it stopped; anything else starts over.
  let done = known && !known.complete ? access.getSize() : 0;
  if (done === 0) access.truncate(0);
  let total = known && known.size > 0 ? known.size : undefined; // 0: a server that gave no size
  for (;;) {
    const end = total === undefined ? done + DOWNLOAD_CHUNK : Math.min(total, done + DOWNLOAD_CHUNK);
    if (total !== undefined && done >= total) break;
    const response = await fetch(url, { headers: { Range: `bytes=${done}-${end - 1}` } });
    if (response.status === 200) {
      // No Range support: the whole body, streamed into the file from the start.
      total = Number(response.headers.get("Content-Length") ?? NaN);
      done = 0;
      access.truncate(0);
      await save({ url, size: Number.isFinite(total) ? total : 0, complete: false });
      done = await streamBody(url, response, access, Number.isFinite(total) ? total : 0, onProgress);
      total = done;
      break;
    }
    if (response.status === 416 && total === undefined && done === 0) throw new ModelSourceError(`${url}: the file is empty`);
    if (response.status !== 206) throw new ModelSourceError(`${url}: HTTP ${response.status} ${response.statusText}`);
    const rangeTotal = totalOfContentRange(response.headers.get("Content-Range"));
    if (rangeTotal === undefined) throw new ModelSourceError(`${url}: a ranged answer without the file's size (Content-Range)`);
    if (total !== undefined && rangeTotal !== total) throw new ModelSourceError(`${url}: the file changed size while downloading (${total} → ${rangeTotal} bytes); reload to start again`);
    if (total === undefined) {
      total = rangeTotal;
      await save({ url, size: total, complete: false });
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (done === 0) checkMagic(url, bytes);
    access.write(bytes, { at: done });
    done += bytes.length;
    onProgress(done, total);
    if (bytes.length === 0) throw new ModelSourceError(`${url}: the server sent no bytes at ${done}`);
  }
  access.flush();
  const entry = { url, size: total!, complete: true };
  await save(entry);
  return entry;
}

/** A whole-file answer streamed into the file; its first 4 bytes are checked before anything after them is written. */
async function streamBody(url: string, response: Response, access: FileSystemSyncAccessHandle, total: number, onProgress: Progress): Promise<number> {
  if (!response.body) throw new ModelSourceError(`${url}: the answer has no body`);
  const reader = response.body.getReader();
  let done = 0;
  let head = new Uint8Array(0); // the first 4 bytes, however the body is split
  for (;;) {
    const { value, done: finished } = await reader.read();
    if (finished) break;
    if (head.length < 4) {
      const more = value.subarray(0, 4 - head.length);
      const joined = new Uint8Array(head.length + more.length);
      joined.set(head);
      joined.set(more, head.length);
      head = joined;
      if (head.length === 4) {
        try {
          checkMagic(url, head);
        } catch (e) {
          await reader.cancel();
          throw e;
        }
      }
    }
    access.write(value, { at: done });
    done += value.length;
    onProgress(done, total || done);
  }
  return done;
}

/** Forget every cached model. */
export async function clearModelStore(): Promise<void> {
  const root = await navigator.storage.getDirectory();
  await root.removeEntry(STORE_DIR, { recursive: true }).catch(() => {});
}

function checkRange(name: string, size: number, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new RangeError(`${name}: read of ${length} bytes at ${offset} is outside the file's ${size} bytes`);
  }
}
