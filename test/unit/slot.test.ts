/**
 * Slot math against what Redis itself answers. The expected slots are CLUSTER KEYSLOT replies of a
 * real Redis 7.0.15 cluster node (test/cluster/slots.test.ts asks a live cluster about more keys).
 */
import { crc16, hashedPart, keySlot } from '../../src/cluster/slot';

describe('keySlot', () => {
  it.each([
    ['foo', 12182],
    ['bar', 5061],
    ['123456789', 12739],
    ['', 0],
    // the hash tag: the text between the first '{' and the first '}' after it
    ['{user1000}.following', 3443],
    ['foo{bar}{zap}', 5061],
    // an empty tag does not count: the whole key is hashed
    ['foo{}{bar}', 8363],
    ['{}', 15257],
    // the tag starts after the first '{' and may itself hold one
    ['foo{{bar}}zap', 4015],
    // a '{' without a '}' after it, or a '}' before the first '{'
    ['{a', 10276],
    ['a}b{c}', 7365],
    // counted by UTF-8 bytes
    ['ümlaut', 5498],
  ])('%j is in slot %i, as CLUSTER KEYSLOT says', (key, slot) => {
    expect(keySlot(key)).toBe(slot);
  });

  it('keys that share a hash tag share a slot whatever surrounds the tag', () => {
    const slots = new Set(['{t}:job:1', '{t}:ws:acme:job:1', 'x{t}y', '{t}', '{t}}']);
    expect(new Set([...slots].map(keySlot))).toEqual(new Set([keySlot('t')]));
  });

  it('takes a Buffer as the bytes it is', () => {
    expect(keySlot(Buffer.from('{user1000}.followers'))).toBe(3443);
  });
});

describe('crc16', () => {
  it('is CRC16-CCITT (XMODEM): the check value of "123456789" is 0x31C3, as in Redis crc16.c', () => {
    expect(crc16(Buffer.from('123456789'))).toBe(0x31c3);
  });
});

describe('hashedPart', () => {
  it.each([
    ['plain', 'plain'],
    ['{tag}rest', 'tag'],
    ['a{b}c{d}', 'b'],
    ['a{}b', 'a{}b'],
    ['a{b', 'a{b'],
    ['}a{b}', 'b'],
  ])('of %j is %j', (key, part) => {
    expect(hashedPart(Buffer.from(key)).toString()).toBe(part);
  });
});
