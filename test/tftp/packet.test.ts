/**
 * TFTP codec: golden bytes, byte-exact round trips, a table of malformed packets with their exact errors, and a
 * seeded fuzz showing decode only ever throws TftpPacketError.
 */
import t from 'tap'
import { decode, encode, encodingLength, TftpPacketError, writeDataHeader, type TftpPacket } from '../../src/tftp/packet.js'
import { seededRandom } from '../helpers/seeded-random.js'

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex')

// An EDK2-style size probe: "ipxe.efi", "octet", tsize 0, blksize 1468.
const uefiProbe = hex('0001 697078652e65666900 6f6374657400 7473697a650030 00 626c6b73697a6500 3134363800')

t.test('golden bytes', async (t) => {
  t.same(decode(uefiProbe), { op: 'rrq', filename: 'ipxe.efi', mode: 'octet', options: [['tsize', '0'], ['blksize', '1468']] })
  t.same(encode({ op: 'oack', options: [['tsize', '1024'], ['blksize', '1468']] }), hex('0006 7473697a6500 3130323400 626c6b73697a6500 3134363800'))
  t.same(encode({ op: 'ack', block: 65536 + 7 }), hex('0004 0007'), 'block numbers wrap to 16 bits')
  t.same(encode({ op: 'error', code: 5, message: 'Unknown transfer ID' }), Buffer.concat([hex('0005 0005'), Buffer.from('Unknown transfer ID\0')]))
  t.same(decode(hex('0003 ffff 0102')), { op: 'data', block: 65535, data: hex('0102') })
  const buf = Buffer.alloc(6, 0xaa)
  writeDataHeader(buf, 65536)
  t.same(buf, hex('0003 0000 aaaa'), 'DATA header in place, 65536 -> 0')
  // Trailing NUL padding after options is accepted (seen from some PXE ROMs).
  t.same(decode(Buffer.concat([uefiProbe, hex('0000')])), decode(uefiProbe))
  t.same(decode(hex('0005 0008 6162')), { op: 'error', code: 8, message: 'ab' }, 'ERROR without the NUL is accepted')
})

t.test('round trips are byte-exact', async (t) => {
  const packets: TftpPacket[] = [
    { op: 'rrq', filename: 'pxelinux.0', mode: 'octet', options: [] },
    { op: 'wrq', filename: 'x', mode: 'netascii', options: [['blksize', '512']] },
    { op: 'rrq', filename: 'a\u00ff\u0080b', mode: 'OCTET', options: [['WindowSize', '16'], ['x', '']] },
    { op: 'data', block: 1, data: Buffer.alloc(0) },
    { op: 'data', block: 65535, data: Buffer.from('abc') },
    { op: 'ack', block: 0 },
    { op: 'error', code: 8, message: '' },
    { op: 'oack', options: [['windowsize', '32']] },
  ]
  for (const p of packets) {
    const bytes = encode(p)
    t.equal(bytes.length, encodingLength(p))
    const again = decode(bytes)
    t.same(again, p, p.op)
    t.same(encode(again), bytes, `${p.op} bytes`)
  }
})

t.test('malformed packets give exact errors', async (t) => {
  const table: Array<[string, string, string]> = [
    ['', 'ERR_TFTP_SHORT', 'TFTP packet is 0 bytes, the shortest is 2'],
    ['00', 'ERR_TFTP_SHORT', 'TFTP packet is 1 bytes, the shortest is 2'],
    ['0009', 'ERR_TFTP_OPCODE', 'TFTP opcode 9 is unknown'],
    ['0001 6162', 'ERR_TFTP_UNTERMINATED', 'TFTP RRQ string at byte 2 is not NUL-terminated'],
    ['0001 6100', 'ERR_TFTP_SHORT', 'TFTP RRQ has 1 strings, needs filename and mode'],
    ['0002 6100 6f00 6200', 'ERR_TFTP_OPTION', "TFTP WRQ option 'b' has no value"],
    ['0001 6100 6f00 00 3100', 'ERR_TFTP_OPTION', 'TFTP RRQ option 1 has an empty name'],
    ['0003 00', 'ERR_TFTP_SHORT', 'TFTP DATA is 3 bytes, the shortest is 4'],
    ['0004 000100', 'ERR_TFTP_LENGTH', 'TFTP ACK is 5 bytes, must be 4'],
    ['0005 00', 'ERR_TFTP_SHORT', 'TFTP ERROR is 3 bytes, the shortest is 4'],
    ['0006 6100', 'ERR_TFTP_OPTION', "TFTP OACK option 'a' has no value"],
  ]
  for (const [bytes, code, message] of table) {
    t.throws(() => decode(hex(bytes)), { name: 'TftpPacketError', code, message }, bytes || '(empty)')
  }
})

t.test('seeded fuzz: decode only throws TftpPacketError', async (t) => {
  const random = seededRandom(1350)
  let decoded = 0
  const unstable: string[] = []
  for (let i = 0; i < 20_000; i++) {
    const len = Math.floor(random() * 40)
    const buf = Buffer.alloc(len)
    for (let j = 0; j < len; j++) buf[j] = random() < 0.3 ? 0 : Math.floor(random() * 256)
    if (len >= 2 && random() < 0.8) buf[1] = 1 + Math.floor(random() * 6)
    if (len >= 1) buf[0] = 0
    try {
      const p = decode(buf)
      decoded++
      // Whatever decodes re-encodes to something that decodes the same.
      if (!encode(decode(encode(p))).equals(encode(p))) unstable.push(buf.toString('hex'))
    } catch (err) {
      if (!(err instanceof TftpPacketError)) throw err
    }
  }
  t.ok(decoded > 1000, `${decoded} random buffers decoded`)
  t.same(unstable, [], 'every decoded packet re-encodes stably')
})
