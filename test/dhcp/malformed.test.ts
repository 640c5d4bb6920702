import t from 'tap'
import { DhcpError, decode, type DhcpErrorCode } from '../../src/dhcp/index.js'
import { captureFrames, frame } from './fixtures.js'
import { mutate, rng } from './mutate.js'

const frames = captureFrames()
const base = (): Buffer => Buffer.from(frame(frames, 1).payload.subarray(0, 240))
/** Frame 1's header and cookie followed by `area` as the options field. */
const withArea = (area: number[], patch?: (b: Buffer) => void): Buffer => {
  const b = base()
  patch?.(b)
  return Buffer.concat([b, Buffer.from(area)])
}
const file128 = (bytes: number[]): Buffer => {
  const f = Buffer.alloc(128)
  Buffer.from(bytes).copy(f)
  return f
}

const cases: Array<{ name: string; buf: Buffer; code: DhcpErrorCode; message: string }> = [
  { name: 'empty', buf: Buffer.alloc(0), code: 'ERR_DHCP_TRUNCATED', message: 'DHCP packet is 0 bytes, the BOOTP header and magic cookie need 240' },
  {
    name: 'truncated header',
    buf: frame(frames, 1).payload.subarray(0, 100),
    code: 'ERR_DHCP_TRUNCATED',
    message: 'DHCP packet is 100 bytes, the BOOTP header and magic cookie need 240',
  },
  {
    name: 'header without cookie (plain BOOTP length)',
    buf: frame(frames, 1).payload.subarray(0, 236),
    code: 'ERR_DHCP_TRUNCATED',
    message: 'DHCP packet is 236 bytes, the BOOTP header and magic cookie need 240',
  },
  {
    name: 'bad magic cookie',
    buf: withArea([255], (b) => b.writeUInt32BE(0x63825364, 236)),
    code: 'ERR_DHCP_BAD_COOKIE',
    message: 'DHCP magic cookie is 0x63825364, expected 0x63825363',
  },
  {
    name: 'option running past the end',
    buf: withArea([53, 1, 1, 43, 12, 1, 2, 3, 4, 5]),
    code: 'ERR_DHCP_OPTION_OVERRUN',
    message: 'DHCP option 43 claims 12 bytes, only 5 remain',
  },
  {
    name: 'option code as the last byte, no length',
    buf: withArea([53, 1, 1, 60]),
    code: 'ERR_DHCP_OPTION_OVERRUN',
    message: 'DHCP option 60 has no length byte',
  },
  {
    name: 'bad overload value',
    buf: withArea([53, 1, 1, 52, 1, 4, 255]),
    code: 'ERR_DHCP_BAD_OVERLOAD',
    message: 'DHCP option 52 (overload) is 4, expected 1, 2 or 3',
  },
  {
    name: 'overload of wrong size',
    buf: withArea([53, 1, 1, 52, 2, 1, 1, 255]),
    code: 'ERR_DHCP_BAD_OPTION',
    message: 'DHCP option 52 has 2 bytes, expected 1',
  },
  {
    name: 'overload pointing at garbage in file',
    buf: withArea([53, 1, 1, 52, 1, 1, 255], (b) => file128([67, 11, ...Buffer.from('snponly.efi'), 200, 150]).copy(b, 108)),
    code: 'ERR_DHCP_OPTION_OVERRUN',
    message: 'DHCP option 200 claims 150 bytes, only 113 remain in the file field',
  },
  {
    name: 'overload pointing at garbage in sname',
    buf: withArea([53, 1, 1, 52, 1, 2, 255], (b) => b.fill(0x41, 44, 108)),
    code: 'ERR_DHCP_OPTION_OVERRUN',
    message: 'DHCP option 65 claims 65 bytes, only 62 remain in the sname field',
  },
  {
    name: 'message type of wrong size',
    buf: withArea([53, 2, 1, 1, 255]),
    code: 'ERR_DHCP_BAD_OPTION',
    message: 'DHCP option 53 has 2 bytes, expected 1',
  },
  {
    name: 'zero-length 93',
    buf: withArea([53, 1, 1, 93, 0, 255]),
    code: 'ERR_DHCP_BAD_OPTION',
    message: 'DHCP option 93 has 0 bytes, expected a non-zero multiple of 2',
  },
  {
    name: '93 of odd length',
    buf: withArea([53, 1, 1, 93, 3, 0, 7, 0, 255]),
    code: 'ERR_DHCP_BAD_OPTION',
    message: 'DHCP option 93 has 3 bytes, expected a non-zero multiple of 2',
  },
  {
    name: '94 wrong length',
    buf: withArea([53, 1, 1, 94, 2, 1, 3, 255]),
    code: 'ERR_DHCP_BAD_OPTION',
    message: 'DHCP option 94 has 2 bytes, expected 3',
  },
  {
    name: '97 wrong length',
    buf: withArea([53, 1, 1, 97, 16, ...Buffer.alloc(16, 1), 255]),
    code: 'ERR_DHCP_BAD_OPTION',
    message: 'DHCP option 97 has 16 bytes, expected 17',
  },
  {
    name: 'zero-length 77',
    buf: withArea([53, 1, 1, 77, 0, 255]),
    code: 'ERR_DHCP_BAD_OPTION',
    message: 'DHCP option 77 has 0 bytes, expected at least 1',
  },
  {
    name: 'PXE option 43 with a sub-option overrun',
    buf: withArea([53, 1, 1, 60, 9, ...Buffer.from('PXEClient'), 43, 5, 71, 4, 0x80, 3, 0, 255]),
    code: 'ERR_DHCP_OPTION_OVERRUN',
    message: 'DHCP option 43 sub-option 71 claims 4 bytes, only 3 remain',
  },
  {
    name: 'option 175 sub-option without length',
    buf: withArea([53, 1, 1, 175, 4, 0x13, 1, 1, 0xeb, 255]),
    code: 'ERR_DHCP_OPTION_OVERRUN',
    message: 'DHCP option 175 sub-option 235 has no length byte',
  },
]

t.test('malformed packets give the exact error', async (t) => {
  for (const c of cases) {
    t.throws(() => decode(c.buf), { name: 'DhcpError', code: c.code, message: c.message }, c.name)
  }
})

t.test('non-PXE option 43 stays raw (vendor-defined, e.g. from a site server)', async (t) => {
  const p = decode(withArea([53, 1, 2, 43, 3, 1, 9, 9, 255]))
  t.equal(p.options[1]?.data.toString('hex'), '010909')
})

t.test('100,000 mutated real packets: decode only ever throws DhcpError', async (t) => {
  const next = rng(0x5eed1234)
  const sources = frames.map((f) => f.payload)
  const codes = new Map<string, number>()
  let ok = 0
  let foreign: unknown
  const started = process.hrtime.bigint()
  for (let i = 0; i < 100_000 && foreign === undefined; i++) {
    const buf = mutate(sources[next() % sources.length] as Buffer, next)
    try {
      decode(buf)
      ok++
    } catch (err) {
      if (err instanceof DhcpError) codes.set(err.code, (codes.get(err.code) ?? 0) + 1)
      else foreign = { err, packet: buf.toString('base64') }
    }
  }
  const ms = Number(process.hrtime.bigint() - started) / 1e6
  t.equal(foreign, undefined, 'no error other than DhcpError')
  t.ok(ok > 1000 && codes.size >= 4, `both outcomes are exercised: ${ok} decoded, errors ${JSON.stringify([...codes])}`)
  t.comment(`100k mutated decodes in ${ms.toFixed(0)} ms`)
})
