/**
 * Redis Cluster's key-to-slot mapping, computed as the server computes it (cluster.c keyHashSlot),
 * so a call whose keys would span slots is refused here instead of coming back as CROSSSLOT.
 */
export const SLOT_COUNT = 16384;

/** CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, no reflection, as in Redis' crc16.c. */
const TABLE = (() => {
  const table = new Uint16Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8;
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    table[byte] = crc;
  }
  return table;
})();

export function crc16(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ TABLE[((crc >> 8) ^ byte) & 0xff];
  return crc;
}

/**
 * The part of a key Redis hashes: the text between the first '{' and the first '}' after it, when
 * that text is not empty; otherwise the whole key. "{}x{y}" hashes whole, "a{{b}}" hashes "{b".
 */
export function hashedPart(key: Buffer): Buffer {
  const open = key.indexOf(0x7b); // '{'
  if (open === -1) return key;
  const close = key.indexOf(0x7d, open + 1); // '}'
  if (close === -1 || close === open + 1) return key;
  return key.subarray(open + 1, close);
}

/** The hash slot (0..16383) of a key; a string key counts by its UTF-8 bytes, as ioredis sends it. */
export function keySlot(key: string | Buffer): number {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
  return crc16(hashedPart(bytes)) & (SLOT_COUNT - 1);
}
