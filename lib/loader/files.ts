// Opening the files of a checkpoint: regular files only, opened without blocking, JSON read whole
// only up to a cap. A FIFO named config.json used to block the event loop forever; /dev/zero behind
// a symlink grew the process to 17 GB before std::bad_alloc; a directory gave a bare EISDIR.
import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs';

export type FileErrorFactory = (path: string, message: string) => Error;

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
  return `cannot open: ${(e as Error).message}`;
}

/**
 * Opens `path` for reading; a file descriptor and its stat, or `fail(path, why)`. O_NONBLOCK makes
 * opening a FIFO return at once (it is then refused like any other non-regular file).
 */
export function openRegularFile(path: string, fail: FileErrorFactory): { fd: number; size: number } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    throw fail(path, openFailure(e));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail(path, `is ${kindOf(st)}, not a regular file`);
    return { fd, size: st.size };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/** Reads exactly `length` bytes at `position` (fewer only at the end of the file). */
export function readExactly(fd: number, length: number, position: number): Buffer {
  const buf = Buffer.alloc(length);
  let got = 0;
  while (got < length) {
    const n = readSync(fd, buf, got, length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return buf.subarray(0, got);
}

/** A small regular file (JSON) as UTF-8, refused past `maxBytes`. */
export function readSmallFile(path: string, maxBytes: number, fail: FileErrorFactory): string {
  const { fd, size } = openRegularFile(path, fail);
  try {
    if (size > maxBytes) throw fail(path, `is ${size} bytes, more than the ${maxBytes} a JSON file of a checkpoint may have`);
    return readExactly(fd, size, 0).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
