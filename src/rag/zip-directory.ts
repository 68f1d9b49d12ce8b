// A ZIP's central directory, read without inflating anything: what the archive declares it holds (names and sizes),
// so a DOCX that would inflate past the limits is refused before any decompression, and each entry can then be
// inflated with its declared size as a hard cap (an archive whose sizes lie fails instead of growing).
import { inflateRawSync } from 'node:zlib';

export interface ZipEntry {
  name: string;
  method: number;
  compressedSize: number;
  uncompressedSize: number;
  localHeaderOffset: number;
}

export class ZipFormatError extends Error {}

const EOCD = 0x06054b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** The entries the central directory lists; ZIP64 archives (sizes of 4 GiB and more) are refused. */
export function readZipDirectory(bytes: Uint8Array, maxEntries: number): ZipEntry[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end record is the last 22 bytes plus a comment of at most 65,535.
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65_535); i--) {
    if (buf.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipFormatError('no ZIP central directory');
  const count = buf.readUInt16LE(eocd + 10);
  const size = buf.readUInt32LE(eocd + 12);
  const offset = buf.readUInt32LE(eocd + 16);
  if (count === 0xffff || offset === 0xffffffff) throw new ZipFormatError('ZIP64 archives are not supported');
  if (count > maxEntries) throw new ZipLimitError(`The archive has ${count} entries (the limit is ${maxEntries})`);
  if (offset + size > eocd) throw new ZipFormatError('the central directory lies outside the file');
  const entries: ZipEntry[] = [];
  let p = offset;
  for (let n = 0; n < count; n++) {
    if (p + 46 > eocd || buf.readUInt32LE(p) !== CENTRAL) throw new ZipFormatError('a central directory entry is damaged');
    const nameLength = buf.readUInt16LE(p + 28);
    const extraLength = buf.readUInt16LE(p + 30);
    const commentLength = buf.readUInt16LE(p + 32);
    entries.push({
      method: buf.readUInt16LE(p + 10),
      compressedSize: buf.readUInt32LE(p + 20),
      uncompressedSize: buf.readUInt32LE(p + 24),
      localHeaderOffset: buf.readUInt32LE(p + 42),
      name: buf.toString('utf8', p + 46, p + 46 + nameLength),
    });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

/** A limit the archive's declaration exceeds (as opposed to a damaged archive). */
export class ZipLimitError extends Error {}

/** Sum of the declared uncompressed sizes, refused past `maxBytes`. */
export function checkDeclaredSize(entries: ZipEntry[], maxBytes: number): number {
  let total = 0;
  for (const e of entries) total += e.uncompressedSize;
  if (total > maxBytes) throw new ZipLimitError(`The archive declares ${total} bytes uncompressed (the limit is ${maxBytes})`);
  return total;
}

/** One entry's content, inflated with its declared size as the cap: an entry inflating to more is refused. */
export function inflateEntry(bytes: Uint8Array, entry: ZipEntry): Buffer {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const h = entry.localHeaderOffset;
  if (h + 30 > buf.length || buf.readUInt32LE(h) !== LOCAL) throw new ZipFormatError(`the local header of ${entry.name} is damaged`);
  const start = h + 30 + buf.readUInt16LE(h + 26) + buf.readUInt16LE(h + 28);
  const data = buf.subarray(start, start + entry.compressedSize);
  if (data.length !== entry.compressedSize) throw new ZipFormatError(`${entry.name} is truncated`);
  let out: Buffer;
  if (entry.method === 0) out = Buffer.from(data);
  else if (entry.method === 8) {
    try {
      // maxOutputLength stops zlib the moment the output passes what the directory declared.
      out = inflateRawSync(data, { maxOutputLength: Math.max(1, entry.uncompressedSize) });
    } catch (err) {
      if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
        throw new ZipLimitError(`${entry.name} inflates to more than the ${entry.uncompressedSize} bytes its archive declares`);
      }
      throw new ZipFormatError(`${entry.name} does not inflate (${(err as Error).message})`);
    }
  } else throw new ZipFormatError(`${entry.name} uses an unsupported compression method (${entry.method})`);
  if (out.length !== entry.uncompressedSize) {
    throw new ZipLimitError(`${entry.name} inflates to ${out.length} bytes, not the ${entry.uncompressedSize} its archive declares`);
  }
  return out;
}
