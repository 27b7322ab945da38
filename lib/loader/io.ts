// The loader's file reads, written once as generators that yield what they need (stat a path, list a
// directory, open a regular file, read bytes, close) and run by two drivers: runSync (openCheckpoint,
// readConfig, readSafetensorsHeader, readGguf: the public synchronous functions) and runAsync
// (loadModel: every stat, open and read on libuv's thread pool, so a slow disk, a FIFO or a device
// behind a checkpoint's name never holds the event loop). Parsing is the same code on both.
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, statSync, type Stats } from 'node:fs';
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';

export type FileErrorFactory = (path: string, message: string) => Error;

/** An open regular file: the driver's handle (a descriptor or a FileHandle) and its size. */
export interface OpenFile {
  readonly handle: unknown;
  readonly size: number;
  readonly path: string;
}

export type IoOp =
  | { op: 'stat'; path: string } // -> { isDirectory: boolean }, or throws the errno error
  | { op: 'readdir'; path: string } // -> string[]
  | { op: 'open'; path: string; fail: FileErrorFactory } // -> OpenFile (regular files only), or throws fail(path, why)
  | { op: 'read'; file: OpenFile; length: number; position: number } // -> Buffer (shorter only at the end of the file)
  | { op: 'close'; file: OpenFile }; // -> undefined

export type Io<T> = Generator<IoOp, T, unknown>;

export function* statPath(path: string): Io<{ isDirectory: boolean }> {
  return (yield { op: 'stat', path }) as { isDirectory: boolean };
}
export function* listDir(path: string): Io<string[]> {
  return (yield { op: 'readdir', path }) as string[];
}
export function* openRegular(path: string, fail: FileErrorFactory): Io<OpenFile> {
  return (yield { op: 'open', path, fail }) as OpenFile;
}
export function* readAt(file: OpenFile, length: number, position: number): Io<Buffer> {
  return (yield { op: 'read', file, length, position }) as Buffer;
}
export function* closeFile(file: OpenFile): Io<void> {
  yield { op: 'close', file };
}

function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** What went wrong opening `path`, in words (ENOENT: 'not found'). */
export function openFailure(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'not found';
  if (code === 'ELOOP') return 'a symbolic link loop (too many levels of symbolic links)';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'ENOTDIR') return 'not found (a component of the path is not a directory)';
  if (code === 'EISDIR') return 'is a directory, not a regular file';
  return `cannot open: ${(e as Error).message}`;
}

// O_NONBLOCK: opening a FIFO returns at once (it is then refused like any other non-regular file)
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

function doSync(op: IoOp): unknown {
  switch (op.op) {
    case 'stat':
      return { isDirectory: statSync(op.path).isDirectory() };
    case 'readdir':
      return readdirSync(op.path);
    case 'open': {
      let fd: number;
      try {
        fd = openSync(op.path, OPEN_FLAGS);
      } catch (e) {
        throw op.fail(op.path, openFailure(e));
      }
      try {
        const st = fstatSync(fd);
        if (!st.isFile()) throw op.fail(op.path, `is ${kindOf(st)}, not a regular file`);
        return { handle: fd, size: st.size, path: op.path } satisfies OpenFile;
      } catch (e) {
        closeSync(fd);
        throw e;
      }
    }
    case 'read': {
      const buf = Buffer.alloc(op.length);
      let got = 0;
      while (got < op.length) {
        const n = readSync(op.file.handle as number, buf, got, op.length - got, op.position + got);
        if (n === 0) break;
        got += n;
      }
      return buf.subarray(0, got);
    }
    case 'close':
      closeSync(op.file.handle as number);
      return undefined;
  }
}

async function doAsync(op: IoOp): Promise<unknown> {
  switch (op.op) {
    case 'stat':
      return { isDirectory: (await stat(op.path)).isDirectory() };
    case 'readdir':
      return readdir(op.path);
    case 'open': {
      let fh: FileHandle;
      try {
        fh = await open(op.path, OPEN_FLAGS);
      } catch (e) {
        throw op.fail(op.path, openFailure(e));
      }
      try {
        const st = await fh.stat();
        if (!st.isFile()) throw op.fail(op.path, `is ${kindOf(st)}, not a regular file`);
        return { handle: fh, size: st.size, path: op.path } satisfies OpenFile;
      } catch (e) {
        await fh.close();
        throw e;
      }
    }
    case 'read': {
      const buf = Buffer.alloc(op.length);
      let got = 0;
      while (got < op.length) {
        const { bytesRead } = await (op.file.handle as FileHandle).read(buf, got, op.length - got, op.position + got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return buf.subarray(0, got);
    }
    case 'close':
      await (op.file.handle as FileHandle).close();
      return undefined;
  }
}

/** Runs `steps` with synchronous file calls. */
export function runSync<T>(steps: Io<T>): T {
  let r = steps.next();
  while (!r.done) {
    let value: unknown;
    try {
      value = doSync(r.value);
    } catch (e) {
      r = steps.throw(e);
      continue;
    }
    r = steps.next(value);
  }
  return r.value;
}

/** Runs `steps` with asynchronous file calls (libuv's thread pool): the event loop never waits on a file. */
export async function runAsync<T>(steps: Io<T>): Promise<T> {
  let r = steps.next();
  while (!r.done) {
    let value: unknown;
    try {
      value = await doAsync(r.value);
    } catch (e) {
      r = steps.throw(e);
      continue;
    }
    r = steps.next(value);
  }
  return r.value;
}

/**
 * A checkpoint's small JSON file (config.json, the shard index) read as UTF-8 and parsed: refused past
 * `maxBytes`; `fail(path, 'malformed JSON: ...')` where it does not parse.
 */
export function* readJsonFileSteps(path: string, maxBytes: number, fail: FileErrorFactory): Io<unknown> {
  const file = yield* openRegular(path, fail);
  let text: string;
  try {
    if (file.size > maxBytes) throw fail(path, `is ${file.size} bytes, more than the ${maxBytes} a JSON file of a checkpoint may have`);
    text = (yield* readAt(file, file.size, 0)).toString('utf8');
  } finally {
    yield* closeFile(file);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw fail(path, `malformed JSON: ${(e as Error).message}`);
  }
}
