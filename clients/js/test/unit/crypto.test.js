import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac, randomBytes, randomInt } from 'node:crypto'
import { base64Encode, contentMd5, hex, hmacSha256, md5, sha256, utf8Decode, utf8Encode } from '../../src/index.js'

test('sha256 of known values', () => {
  assert.equal(hex(sha256('')), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
  assert.equal(hex(sha256('abc')), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  assert.equal(
    hex(sha256('abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq')),
    '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1',
  )
})

test('sha256 matches node:crypto for every length 0..300 and random large inputs', () => {
  for (let len = 0; len <= 300; len++) {
    const b = randomBytes(len)
    assert.equal(hex(sha256(b)), createHash('sha256').update(b).digest('hex'), `length ${len}`)
  }
  for (let i = 0; i < 5; i++) {
    const b = randomBytes(randomInt(1000, 100000))
    assert.equal(hex(sha256(b)), createHash('sha256').update(b).digest('hex'))
  }
})

test('hmacSha256 matches node:crypto for random keys (short, 64-byte, long) and data', () => {
  for (let i = 0; i < 300; i++) {
    const keyLen = [0, 1, 32, 63, 64, 65, 100, 200][i % 8]
    const key = randomBytes(keyLen)
    const data = randomBytes(randomInt(0, 500))
    assert.equal(hex(hmacSha256(key, data)), createHmac('sha256', key).update(data).digest('hex'))
  }
  assert.equal(
    base64Encode(hmacSha256('key', 'The quick brown fox jumps over the lazy dog')),
    createHmac('sha256', 'key').update('The quick brown fox jumps over the lazy dog').digest('base64'),
  )
})

test('md5 of the RFC 1321 test suite', () => {
  const suite = {
    '': 'd41d8cd98f00b204e9800998ecf8427e',
    a: '0cc175b9c0f1b6a831c399e269772661',
    abc: '900150983cd24fb0d6963f7d28e17f72',
    'message digest': 'f96b697d7cb7938d525a2f31aaf161d0',
    abcdefghijklmnopqrstuvwxyz: 'c3fcd3d76192e4007dfb496cca67e13b',
    ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789: 'd174ab98d277d9f5a5611c2c9f419d9f',
    '12345678901234567890123456789012345678901234567890123456789012345678901234567890': '57edf4a22be3c955ac49da2e2107b67a',
  }
  for (const [text, digest] of Object.entries(suite)) assert.equal(hex(md5(text)), digest, text)
})

test('md5 matches node:crypto for every length 0..300, random large inputs and UTF-8 text', () => {
  for (let len = 0; len <= 300; len++) {
    const b = randomBytes(len)
    assert.equal(hex(md5(b)), createHash('md5').update(b).digest('hex'), `length ${len}`)
  }
  for (let i = 0; i < 5; i++) {
    const b = randomBytes(randomInt(1000, 100000))
    assert.equal(hex(md5(b)), createHash('md5').update(b).digest('hex'))
  }
  const text = '{"op":"put","obj":{"id":"a","title":"买牛奶 🥛"}}'
  assert.equal(contentMd5(text), createHash('md5').update(text, 'utf8').digest('base64'))
  assert.equal(contentMd5(''), '1B2M2Y8AsgTpgAmY7PhCfg==')
})

function randomString(len) {
  let s = ''
  for (let i = 0; i < len; i++) {
    const r = randomInt(0, 10)
    if (r < 4) s += String.fromCharCode(randomInt(0, 0x80))
    else if (r < 6) s += String.fromCharCode(randomInt(0x80, 0x800))
    else if (r < 8) s += String.fromCharCode(randomInt(0x800, 0xd800))
    else if (r < 9) s += String.fromCodePoint(randomInt(0x10000, 0x110000))
    else s += String.fromCharCode(randomInt(0xd800, 0xe000)) // lone surrogate
  }
  return s
}

test('utf8Encode matches Buffer (incl. astral characters and lone surrogates); utf8Decode round-trips', () => {
  for (let i = 0; i < 500; i++) {
    const s = randomString(randomInt(0, 40))
    const mine = utf8Encode(s)
    const node = Buffer.from(s, 'utf8')
    assert.deepEqual(Buffer.from(mine), node)
    assert.equal(utf8Decode(mine), node.toString('utf8'))
  }
  assert.equal(utf8Decode(new Uint8Array([0xff, 0x41, 0xc3])), '\ufffdA\ufffd')
})

test('base64Encode matches Buffer for every length 0..100', () => {
  for (let len = 0; len <= 100; len++) {
    const b = randomBytes(len)
    assert.equal(base64Encode(b), b.toString('base64'))
  }
  assert.equal(base64Encode('中文'), Buffer.from('中文').toString('base64'))
  assert.equal(base64Encode(new Uint8Array([1, 2, 3, 4]).subarray(1, 3).buffer.slice(1, 3)), Buffer.from([2, 3]).toString('base64'))
  assert.equal(base64Encode(new DataView(new Uint8Array([9, 8, 7]).buffer, 1, 2)), Buffer.from([8, 7]).toString('base64'))
})
