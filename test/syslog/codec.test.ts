import t from 'tap'
import { decode, defaultMaxLineBytes, escapeControls, type SyslogMessage } from '../../src/syslog/message.js'
import { SyslogError, isSyslogError, type SyslogErrorCode } from '../../src/syslog/errors.js'
import { realLines } from './lines.js'

t.test('real lines decode to their fields', async (t) => {
  for (const line of realLines) {
    t.strictSame(decode(Buffer.from(line.wire, 'utf8')), line.decoded, `${line.source}: ${JSON.stringify(line.wire)}`)
  }
})

t.test('util-linux --octet-count: the RFC 6587 count is framing, stripped only when it matches', async (t) => {
  const body = '<13>1 2026-11-27T15:37:18.464906+00:00 vm t - - [timeQuality tzKnown="1" isSynced="0"] octet count'
  t.equal(Buffer.byteLength(body), 98, 'the count logger 2.38 sent for this body')
  t.equal(decode(Buffer.from(`98 ${body}`)).message, 'octet count')
  // A wrong count is not framing: the line has no PRI then, and is kept whole as user.notice text.
  const wrong = decode(Buffer.from(`97 ${body}`))
  t.equal(wrong.message.startsWith('97 <13>1'), true)
  t.equal(wrong.severity, 5)
})

t.test('a line without PRI is user.notice (RFC 3164 section 4.3.3)', async (t) => {
  t.strictSame(decode(Buffer.from('hello from netcat')), { format: 'rfc3164', facility: 1, severity: 5, message: 'hello from netcat' })
})

t.test('control characters are escaped, never passed on', async (t) => {
  const m = decode(Buffer.from('<14>anaconda: \x1b[32mOK\x1b[0m line1\nline2\ttab\x7f\u0085'))
  t.equal(m.message, '#033[32mOK#033[0m line1#012line2\ttab#177#205')
  t.equal(escapeControls('a\0b'), 'a#000b')
  t.notMatch(m.message, /[\n\r\x1b]/)
})

t.test('invalid UTF-8 becomes U+FFFD instead of failing', async (t) => {
  const m = decode(Buffer.concat([Buffer.from('<13>Nov 27 15:37:07 host app: caf'), Buffer.from([0xe9, 0xff])]))
  t.equal(m.message, 'caf\ufffd\ufffd')
})

t.test('the length cap: exactly the cap passes, one byte more is an error naming both sizes', async (t) => {
  const head = '<13>1 - host app - - - '
  const at = Buffer.from(head + 'x'.repeat(defaultMaxLineBytes - head.length))
  t.equal(decode(at).message.length, defaultMaxLineBytes - head.length)
  const over = Buffer.concat([at, Buffer.from('x')])
  t.throws(() => decode(over), { code: 'ERR_SYSLOG_TOO_LONG', message: `syslog line is ${defaultMaxLineBytes + 1} bytes, the cap is ${defaultMaxLineBytes}` })
  t.throws(() => decode(Buffer.from('<13>abc'), { maxBytes: 6 }), { code: 'ERR_SYSLOG_TOO_LONG', message: 'syslog line is 7 bytes, the cap is 6' })
})

const malformed: Array<{ name: string; wire: string; code: SyslogErrorCode; message: string }> = [
  { name: 'empty', wire: '', code: 'ERR_SYSLOG_EMPTY', message: 'syslog line is empty' },
  { name: 'only a newline and NULs', wire: '\n\0\0', code: 'ERR_SYSLOG_EMPTY', message: 'syslog line is empty' },
  { name: 'only spaces', wire: '   ', code: 'ERR_SYSLOG_EMPTY', message: 'syslog line is empty' },
  { name: 'PRI not a number', wire: '<abc>hello', code: 'ERR_SYSLOG_BAD_PRI', message: 'syslog line starts with "<" but has no <0-191> priority: "<abc>hello"' },
  { name: 'PRI not closed', wire: '<13', code: 'ERR_SYSLOG_BAD_PRI', message: 'syslog line starts with "<" but has no <0-191> priority: "<13"' },
  { name: 'PRI empty', wire: '<>x', code: 'ERR_SYSLOG_BAD_PRI', message: 'syslog line starts with "<" but has no <0-191> priority: "<>x"' },
  { name: 'PRI four digits', wire: '<1234>x', code: 'ERR_SYSLOG_BAD_PRI', message: 'syslog line starts with "<" but has no <0-191> priority: "<1234>x"' },
  { name: 'PRI over 191', wire: '<192>x', code: 'ERR_SYSLOG_BAD_PRI', message: 'syslog priority 192 is over 191 (facility 23, severity 7)' },
  { name: 'RFC 5424 line ending after the version', wire: '<13>1 ', code: 'ERR_SYSLOG_BAD_HEADER', message: 'RFC 5424 line ends before its TIMESTAMP' },
  { name: 'RFC 5424 line ending after HOSTNAME', wire: '<13>1 - host', code: 'ERR_SYSLOG_BAD_HEADER', message: 'RFC 5424 line ends before its HOSTNAME' },
  { name: 'RFC 5424 line without STRUCTURED-DATA', wire: '<13>1 - host app - -', code: 'ERR_SYSLOG_BAD_HEADER', message: 'RFC 5424 line ends before its MSGID' },
  {
    name: 'RFC 5424 timestamp not RFC 3339',
    wire: '<13>1 Nov-27 host app - - - x',
    code: 'ERR_SYSLOG_BAD_HEADER',
    message: 'RFC 5424 TIMESTAMP is not RFC 3339: "Nov-27"',
  },
  {
    name: 'RFC 5424 APP-NAME over 48 characters',
    wire: `<13>1 - host ${'a'.repeat(49)} - - - x`,
    code: 'ERR_SYSLOG_BAD_HEADER',
    message: `RFC 5424 APP-NAME must be 1-48 printable ASCII characters, got "${'a'.repeat(40)}..."`,
  },
  {
    name: 'RFC 5424 HOSTNAME over 255 characters',
    wire: `<13>1 - ${'h'.repeat(256)} app - - - x`,
    code: 'ERR_SYSLOG_BAD_HEADER',
    message: `RFC 5424 HOSTNAME must be 1-255 printable ASCII characters, got "${'h'.repeat(40)}..."`,
  },
  {
    name: 'RFC 5424 empty field (two spaces)',
    wire: '<13>1 -  app - - - x',
    code: 'ERR_SYSLOG_BAD_HEADER',
    message: 'RFC 5424 HOSTNAME must be 1-255 printable ASCII characters, got ""',
  },
  {
    name: 'RFC 5424 STRUCTURED-DATA neither nil nor an element',
    wire: '<13>1 - host app - - hello',
    code: 'ERR_SYSLOG_BAD_STRUCTURED_DATA',
    message: 'RFC 5424 STRUCTURED-DATA must be "-" or start with "[", got "hello"',
  },
  {
    name: 'RFC 5424 STRUCTURED-DATA element not closed',
    wire: '<13>1 - host app - - [id@1 a="b"',
    code: 'ERR_SYSLOG_BAD_STRUCTURED_DATA',
    message: 'RFC 5424 STRUCTURED-DATA element is not closed with "]" at ""',
  },
  {
    name: 'RFC 5424 STRUCTURED-DATA value not closed',
    wire: '<13>1 - host app - - [id@1 a="b\\"]',
    code: 'ERR_SYSLOG_BAD_STRUCTURED_DATA',
    message: 'RFC 5424 STRUCTURED-DATA ends inside a quoted value',
  },
  {
    name: 'RFC 5424 STRUCTURED-DATA parameter without a value',
    wire: '<13>1 - host app - - [id@1 a] x',
    code: 'ERR_SYSLOG_BAD_STRUCTURED_DATA',
    message: 'RFC 5424 STRUCTURED-DATA parameter lacks ="value" at "] x"',
  },
  {
    name: 'RFC 5424 STRUCTURED-DATA empty SD-ID',
    wire: '<13>1 - host app - - [] x',
    code: 'ERR_SYSLOG_BAD_STRUCTURED_DATA',
    message: 'RFC 5424 STRUCTURED-DATA has an empty or invalid name at "] x"',
  },
  {
    name: 'RFC 5424 message glued to STRUCTURED-DATA',
    wire: '<13>1 - host app - - [id@1]x',
    code: 'ERR_SYSLOG_BAD_STRUCTURED_DATA',
    message: 'RFC 5424 STRUCTURED-DATA is followed by "x", not a space',
  },
]

t.test('malformed lines: the exact error each gives', async (t) => {
  for (const c of malformed) {
    t.throws(() => decode(Buffer.from(c.wire, 'utf8')), { name: 'SyslogError', code: c.code, message: c.message }, c.name)
  }
})

/** xorshift32, seeded so a failure reproduces. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

t.test('randomized: decode only ever throws SyslogError, and what it returns is well-formed', async (t) => {
  const next = rng(0x5e5106)
  const seeds = realLines.map((l) => Buffer.from(l.wire, 'utf8'))
  const alphabet = Buffer.from('<>[]"\\=- 0123456789:1T.Z+\n\0\x1b\xff')
  let thrown = 0
  let foreign: unknown
  for (let i = 0; i < 50_000 && foreign === undefined; i++) {
    let b = Buffer.from(seeds[next() % seeds.length] as Buffer)
    for (let r = 1 + (next() % 4); r > 0; r--) {
      const at = b.length === 0 ? 0 : next() % b.length
      const kind = next() % 5
      if (kind === 0 && b.length > 0) b[at] = alphabet[next() % alphabet.length] as number
      else if (kind === 1) b = b.subarray(0, next() % (b.length + 1))
      else if (kind === 2) b = Buffer.concat([b.subarray(0, at), Buffer.from([next() & 0xff]), b.subarray(at)])
      else if (kind === 3) b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)])
      else b = Buffer.concat([b, Buffer.alloc(next() % 600, alphabet[next() % alphabet.length] as number)])
    }
    let m: SyslogMessage
    try {
      m = decode(b, { maxBytes: 1024 })
    } catch (err) {
      if (isSyslogError(err)) thrown++
      else foreign = { err, input: b.toString('base64') }
      continue
    }
    if (m.facility < 0 || m.facility > 23 || m.severity < 0 || m.severity > 7 || /[\n\r\0]/.test(m.message)) {
      foreign = { bad: m, input: b.toString('base64') }
    }
  }
  t.equal(foreign, undefined, 'no foreign exception and no ill-formed result')
  t.ok(thrown > 1000, `the mutations reached the error paths (${thrown} rejected)`)
  t.ok(new SyslogError('ERR_SYSLOG_EMPTY', 'x') instanceof Error)
})
