import { spawnSync } from 'child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'fs';
import { tmpdir } from 'os';
import * as path from 'path';

/**
 * Reads a ZIP's central directory (names and uncompressed sizes) with an independent parser, and
 * checks the archive with `unzip -t` when unzip is installed.
 */
export function zipEntries(zip: Buffer): { name: string; size: number; crc: number; offset: number }[] {
  // End of central directory record: signature 0x06054b50 within the last 64 KiB + 22 bytes.
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 65557); i--) {
    if (zip.readUInt32LE(i) === 0x06054b50) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new Error('no end of central directory record: not a ZIP');
  const count = zip.readUInt16LE(eocd + 10);
  let p = zip.readUInt32LE(eocd + 16);
  const entries: { name: string; size: number; crc: number; offset: number }[] = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error(`bad central directory entry ${i}`);
    const crc = zip.readUInt32LE(p + 16);
    const size = zip.readUInt32LE(p + 24);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    let offset = zip.readUInt32LE(p + 42);
    if (offset === 0xffffffff) offset = Number(zip.readBigUInt64LE(p + 46 + nameLen + 4));
    entries.push({ name: zip.toString('utf8', p + 46, p + 46 + nameLen), size, crc, offset });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** `unzip -t` over the archive; undefined when unzip is not installed. */
export function unzipTest(zip: Buffer): { ok: boolean; output: string } | undefined {
  if (spawnSync('sh', ['-c', 'command -v unzip']).status !== 0) return undefined;
  const dir = mkdtempSync(path.join(tmpdir(), 'zip-'));
  try {
    const file = path.join(dir, 'a.zip');
    writeFileSync(file, zip);
    const r = spawnSync('unzip', ['-t', file], { encoding: 'utf8' });
    return { ok: r.status === 0, output: r.stdout + r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The stored bytes of an entry (STORED entries only), found through its local file header. */
export function zipEntryData(zip: Buffer, entry: { offset: number; size: number }): Buffer {
  const p = entry.offset;
  if (zip.readUInt32LE(p) !== 0x04034b50) throw new Error(`no local file header at ${p}`);
  if (zip.readUInt16LE(p + 8) !== 0) throw new Error(`entry at ${p} is compressed`);
  const start = p + 30 + zip.readUInt16LE(p + 26) + zip.readUInt16LE(p + 28);
  return zip.subarray(start, start + entry.size);
}
