import { ZIP_MAX_ENTRY_BYTES } from '../declarations';
/**
 * A resumable writer of STORED (uncompressed) ZIP archives. Photos are already compressed, so storing
 * them costs nothing and keeps the archive a plain concatenation: header, bytes, header, bytes, ...,
 * central directory. Every byte is a function of the entries' names, sizes and CRCs, so the same
 * files give the same archive, and `state` (offset + entries so far, plain JSON) is all a later
 * process needs to continue an archive whose first bytes were already uploaded by an earlier one.
 *
 * Why not archiver/yazl: neither can continue an archive from saved state (their offsets and central
 * directory live in private fields), and resuming a bundle after a Spot interruption needs exactly that.
 * The format parts used here are small and fixed (APPNOTE 6.3.10 §4.3): local file header with the
 * CRC and sizes known up front (the photo is spooled and hashed before its entry is written, so no data
 * descriptor), central directory, and ZIP64 records when offsets or the entry count pass the 32/16-bit
 * fields. Entry sizes are limited to < 4 GiB (maxFileBytes), so only offsets ever need ZIP64.
 */

export interface ZipEntryState {
  name: string;
  size: number;
  crc: number;
  /** Offset of the local file header. */
  offset: number;
}

export interface ZipState {
  /** Bytes written so far. */
  offset: number;
  entries: ZipEntryState[];
}

/** Largest entry this writer stores (no ZIP64 sizes in local headers). */
export const MAX_ENTRY_BYTES = ZIP_MAX_ENTRY_BYTES;

/** MS-DOS date/time of every entry: 2000-01-01 00:00, so reruns give identical bytes. */
const DOS_TIME = 0;
const DOS_DATE = ((2000 - 1980) << 9) | (1 << 5) | 1;
/** General purpose flag bit 11: names are UTF-8. */
const FLAG_UTF8 = 0x0800;
/** "Made by" Unix (3), spec 4.5, so external attributes carry a file mode. */
const MADE_BY = (3 << 8) | 45;
const MODE_FILE = 0o100644;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

export class ZipWriter {
  private offset: number;
  private readonly entries: ZipEntryState[];

  constructor(resume?: ZipState) {
    this.offset = resume?.offset ?? 0;
    this.entries = resume ? resume.entries.map((e) => ({ ...e })) : [];
  }

  get bytes(): number {
    return this.offset;
  }

  get count(): number {
    return this.entries.length;
  }

  /** A copy of the writer's state, to store in a checkpoint. */
  state(): ZipState {
    return { offset: this.offset, entries: this.entries.map((e) => ({ ...e })) };
  }

  /**
   * The local file header of the next entry. The caller then writes exactly `size` bytes of data
   * and calls `endEntry()`.
   */
  beginEntry(name: string, size: number, crc: number): Buffer {
    if (!Number.isInteger(size) || size < 0 || size > MAX_ENTRY_BYTES) {
      throw new Error(`zip entry ${name}: size ${size} is outside 0..${MAX_ENTRY_BYTES}`);
    }
    const nameBuf = Buffer.from(name, 'utf8');
    if (nameBuf.length > U16_MAX) throw new Error(`zip entry name is ${nameBuf.length} bytes, more than ${U16_MAX}`);
    const h = Buffer.alloc(30 + nameBuf.length);
    h.writeUInt32LE(0x04034b50, 0);
    h.writeUInt16LE(20, 4);
    h.writeUInt16LE(FLAG_UTF8, 6);
    h.writeUInt16LE(0, 8);
    h.writeUInt16LE(DOS_TIME, 10);
    h.writeUInt16LE(DOS_DATE, 12);
    h.writeUInt32LE(crc >>> 0, 14);
    h.writeUInt32LE(size, 18);
    h.writeUInt32LE(size, 22);
    h.writeUInt16LE(nameBuf.length, 26);
    h.writeUInt16LE(0, 28);
    nameBuf.copy(h, 30);
    this.entries.push({ name, size, crc: crc >>> 0, offset: this.offset });
    this.offset += h.length;
    return h;
  }

  /** Accounts for the entry's data, written by the caller after the header. */
  endEntry(): void {
    const e = this.entries[this.entries.length - 1];
    this.offset += e.size;
  }

  /** Central directory and end records: the last bytes of the archive. */
  finish(): Buffer {
    const parts: Buffer[] = [];
    const cdOffset = this.offset;
    for (const e of this.entries) {
      const nameBuf = Buffer.from(e.name, 'utf8');
      const zip64 = e.offset >= U32_MAX;
      const extra = zip64 ? Buffer.alloc(12) : Buffer.alloc(0);
      if (zip64) {
        extra.writeUInt16LE(0x0001, 0);
        extra.writeUInt16LE(8, 2);
        extra.writeBigUInt64LE(BigInt(e.offset), 4);
      }
      const c = Buffer.alloc(46);
      c.writeUInt32LE(0x02014b50, 0);
      c.writeUInt16LE(MADE_BY, 4);
      c.writeUInt16LE(zip64 ? 45 : 20, 6);
      c.writeUInt16LE(FLAG_UTF8, 8);
      c.writeUInt16LE(0, 10);
      c.writeUInt16LE(DOS_TIME, 12);
      c.writeUInt16LE(DOS_DATE, 14);
      c.writeUInt32LE(e.crc, 16);
      c.writeUInt32LE(e.size, 20);
      c.writeUInt32LE(e.size, 24);
      c.writeUInt16LE(nameBuf.length, 28);
      c.writeUInt16LE(extra.length, 30);
      c.writeUInt16LE(0, 32);
      c.writeUInt16LE(0, 34);
      c.writeUInt16LE(0, 36);
      c.writeUInt32LE((MODE_FILE << 16) >>> 0, 38);
      c.writeUInt32LE(zip64 ? U32_MAX : e.offset, 42);
      parts.push(c, nameBuf, extra);
    }
    const cdSize = parts.reduce((n, b) => n + b.length, 0);
    const count = this.entries.length;
    const needZip64 = count >= U16_MAX || cdOffset >= U32_MAX || cdSize >= U32_MAX;
    if (needZip64) {
      const zip64EocdOffset = cdOffset + cdSize;
      const r = Buffer.alloc(56);
      r.writeUInt32LE(0x06064b50, 0);
      r.writeBigUInt64LE(44n, 4);
      r.writeUInt16LE(MADE_BY, 12);
      r.writeUInt16LE(45, 14);
      r.writeUInt32LE(0, 16);
      r.writeUInt32LE(0, 20);
      r.writeBigUInt64LE(BigInt(count), 24);
      r.writeBigUInt64LE(BigInt(count), 32);
      r.writeBigUInt64LE(BigInt(cdSize), 40);
      r.writeBigUInt64LE(BigInt(cdOffset), 48);
      const l = Buffer.alloc(20);
      l.writeUInt32LE(0x07064b50, 0);
      l.writeUInt32LE(0, 4);
      l.writeBigUInt64LE(BigInt(zip64EocdOffset), 8);
      l.writeUInt32LE(1, 16);
      parts.push(r, l);
    }
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(0, 4);
    eocd.writeUInt16LE(0, 6);
    eocd.writeUInt16LE(Math.min(count, U16_MAX), 8);
    eocd.writeUInt16LE(Math.min(count, U16_MAX), 10);
    eocd.writeUInt32LE(Math.min(cdSize, U32_MAX), 12);
    eocd.writeUInt32LE(Math.min(cdOffset, U32_MAX), 16);
    eocd.writeUInt16LE(0, 20);
    parts.push(eocd);
    const out = Buffer.concat(parts);
    this.offset += out.length;
    return out;
  }
}
