/**
 * The syslog line codec: one UDP datagram -> `{facility, severity, timestamp?, hostname?, app?, message}`.
 *
 * Two wire formats arrive on port 514:
 * - RFC 5424 (`<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA [MSG]`): util-linux `logger -n`
 *   (its default since 2.26), rsyslog's RSYSLOG_SyslogProtocol23Format, systemd-journal-remote's peers.
 * - RFC 3164 "BSD syslog" (`<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: MSG`), which is a description of practice, not a
 *   grammar: busybox syslogd -R forwards what libc's syslog() wrote (no HOSTNAME), iPXE's syslog console sends
 *   `<PRI>[hostname ]ipxe: message` (no TIMESTAMP), rsyslog's forward format puts an RFC 3339 time where the BSD
 *   time goes. The parser takes each field only when it looks like one and leaves the rest in `message`.
 *
 * Pure functions, no I/O. Every failure is a SyslogError with a stable code (see errors.ts).
 */
import { SyslogError } from './errors.js'

/** One decoded syslog line. */
export interface SyslogMessage {
  /** Which grammar matched. */
  format: 'rfc3164' | 'rfc5424'
  /** 0-23 (RFC 5424 table 1: 0 kern, 1 user, 3 daemon, 16-23 local0-7). */
  facility: number
  /** 0-7 (RFC 5424 table 2: 0 emerg ... 3 err, 4 warning, 6 info, 7 debug). */
  severity: number
  /** The sender's time as it sent it (RFC 3339 for 5424, `Mmm dd hh:mm:ss` or RFC 3339 for 3164); absent if none. */
  timestamp?: string
  hostname?: string
  /** RFC 5424 APP-NAME, or the RFC 3164 TAG before `[pid]:`. */
  app?: string
  /** RFC 5424 PROCID, or the pid in an RFC 3164 `tag[pid]:`. */
  procId?: string
  /** RFC 5424 MSGID. */
  msgId?: string
  /** RFC 5424 STRUCTURED-DATA as sent (validated), when not nil. */
  structuredData?: string
  /** The free text, control characters escaped as `#ooo` (octal, as rsyslog does), never containing a newline. */
  message: string
}

/** Options of `decode`. */
export interface DecodeOptions {
  /** Longest datagram accepted, in bytes (default `defaultMaxLineBytes`). */
  maxBytes?: number
}

/**
 * RFC 5424 section 6.1: receivers SHOULD accept 2048 octets and MAY accept more. Installer lines (anaconda, d-i)
 * stay well below it; longer datagrams are more likely abuse than logs.
 */
export const defaultMaxLineBytes = 2048

/** RFC 5424 table 1, index = facility code. */
export const facilityNames: readonly string[] = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp', 'ntp',
  'audit', 'alert', 'clock', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
]

/** RFC 5424 table 2, index = severity code. */
export const severityNames: readonly string[] = ['emerg', 'alert', 'crit', 'err', 'warning', 'notice', 'info', 'debug']

/** RFC 3164 section 4.3.3: a line without PRI is treated as user.notice. */
const defaultPri = 13

/** RFC 5424 section 6: the most characters each header field may have. */
const maxField = { hostname: 255, app: 48, procId: 128, msgId: 32, sdName: 32 } as const

const bsdTime = /^(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) ([ 0-3]\d) ([0-2]\d:[0-5]\d:[0-6]\d) /
const rfc3339Time = /^\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d(\.\d{1,9})?(Z|[+-][0-2]\d:[0-5]\d)$/
/** An RFC 3164 TAG as senders write it: `name:`, `name[pid]:` (names carry `-`, `.`, `/`, `_` in practice). */
const bsdTag = /^([A-Za-z0-9_.\/@-]{1,48})(?:\[([\x21-\x5c\x5e-\x7e]{1,128})\])?:(?: |$)/
const printable = /^[\x21-\x7e]+$/

/**
 * Decodes one datagram. Throws SyslogError for empty, oversized and malformed lines; a line without PRI is
 * accepted as user.notice (RFC 3164 section 4.3.3).
 */
export function decode(datagram: Uint8Array, opts: DecodeOptions = {}): SyslogMessage {
  const maxBytes = opts.maxBytes ?? defaultMaxLineBytes
  if (datagram.length > maxBytes) {
    throw new SyslogError('ERR_SYSLOG_TOO_LONG', `syslog line is ${datagram.length} bytes, the cap is ${maxBytes}`)
  }
  // Invalid UTF-8 becomes U+FFFD: RFC 3164 senders send whatever bytes they have.
  let text = Buffer.from(datagram.buffer, datagram.byteOffset, datagram.length).toString('utf8')
  // Trailing newline (busybox syslogd, rsyslog), NULs (some embedded senders) are framing, not message.
  text = text.replace(/[\r\n\0]+$/, '')
  text = stripOctetCount(text)
  if (text.trim() === '') throw new SyslogError('ERR_SYSLOG_EMPTY', 'syslog line is empty')

  let pri = defaultPri
  let rest = text
  if (text.startsWith('<')) {
    const m = /^<(\d{1,3})>/.exec(text)
    if (m === null) {
      throw new SyslogError('ERR_SYSLOG_BAD_PRI', `syslog line starts with "<" but has no <0-191> priority: ${preview(text)}`)
    }
    pri = Number(m[1])
    if (pri > 191) throw new SyslogError('ERR_SYSLOG_BAD_PRI', `syslog priority ${pri} is over 191 (facility 23, severity 7)`)
    rest = text.slice(m[0].length)
  }
  const facility = pri >> 3
  const severity = pri & 7
  // RFC 5424 section 6.2.2: VERSION follows PRI directly; "1" is the only version defined. Anything else is BSD text.
  if (rest.startsWith('1 ')) return decode5424(rest.slice(2), facility, severity)
  return decode3164(rest, facility, severity)
}

/** RFC 6587 octet counting (`98 <13>1 ...`), which util-linux `logger --octet-count` sends over UDP too. */
function stripOctetCount(text: string): string {
  const m = /^(\d{1,5}) (?=<)/.exec(text)
  if (m === null) return text
  const rest = text.slice(m[0].length)
  return Number(m[1]) === Buffer.byteLength(rest) ? rest : text
}

function decode5424(afterVersion: string, facility: number, severity: number): SyslogMessage {
  let pos = 0
  const field = (name: string, max: number): string | undefined => {
    const end = afterVersion.indexOf(' ', pos)
    if (end < 0) throw new SyslogError('ERR_SYSLOG_BAD_HEADER', `RFC 5424 line ends before its ${name}`)
    const value = afterVersion.slice(pos, end)
    pos = end + 1
    if (value === '-') return undefined
    if (value.length > max || !printable.test(value)) {
      throw new SyslogError('ERR_SYSLOG_BAD_HEADER', `RFC 5424 ${name} must be 1-${max} printable ASCII characters, got ${preview(value)}`)
    }
    return value
  }
  const timestamp = field('TIMESTAMP', 64)
  if (timestamp !== undefined && !rfc3339Time.test(timestamp)) {
    throw new SyslogError('ERR_SYSLOG_BAD_HEADER', `RFC 5424 TIMESTAMP is not RFC 3339: ${preview(timestamp)}`)
  }
  const hostname = field('HOSTNAME', maxField.hostname)
  const app = field('APP-NAME', maxField.app)
  const procId = field('PROCID', maxField.procId)
  const msgId = field('MSGID', maxField.msgId)
  const sdEnd = structuredDataEnd(afterVersion, pos)
  const structuredData = afterVersion.slice(pos, sdEnd)
  let message = ''
  if (sdEnd < afterVersion.length) {
    if (afterVersion[sdEnd] !== ' ') {
      throw new SyslogError('ERR_SYSLOG_BAD_STRUCTURED_DATA', `RFC 5424 STRUCTURED-DATA is followed by ${preview(afterVersion.slice(sdEnd))}, not a space`)
    }
    // Section 6.4: a UTF-8 MSG may start with a BOM; it is an encoding marker, not text.
    message = afterVersion.slice(sdEnd + 1).replace(/^\uFEFF/, '')
  }
  return {
    format: 'rfc5424',
    facility,
    severity,
    ...defined({ timestamp, hostname, app, procId, msgId }),
    ...(structuredData === '-' ? {} : { structuredData }),
    message: escapeControls(message),
  }
}

/**
 * Where STRUCTURED-DATA starting at `start` ends (RFC 5424 section 6.3): "-", or `[SD-ID *(SP NAME="VALUE")]`
 * elements back to back, values escaping `"`, `\` and `]` with a backslash.
 */
function structuredDataEnd(s: string, start: number): number {
  const bad = (why: string): SyslogError => new SyslogError('ERR_SYSLOG_BAD_STRUCTURED_DATA', `RFC 5424 STRUCTURED-DATA ${why}`)
  if (s[start] === '-') return start + 1
  if (s[start] !== '[') throw bad(`must be "-" or start with "[", got ${preview(s.slice(start))}`)
  const sdName = (from: number): number => {
    let i = from
    while (i < s.length && i - from < maxField.sdName && /[\x21-\x7e]/.test(s[i] as string) && !'= ]"'.includes(s[i] as string)) i++
    if (i === from) throw bad(`has an empty or invalid name at ${preview(s.slice(from))}`)
    return i
  }
  let i = start
  while (s[i] === '[') {
    i = sdName(i + 1)
    while (s[i] === ' ') {
      i = sdName(i + 1)
      if (s[i] !== '=' || s[i + 1] !== '"') throw bad(`parameter lacks ="value" at ${preview(s.slice(i))}`)
      i += 2
      for (;;) {
        const c = s[i]
        if (c === undefined) throw bad('ends inside a quoted value')
        if (c === '\\') i += 2
        else if (c === '"') break
        else i++
      }
      i++
    }
    if (s[i] !== ']') throw bad(`element is not closed with "]" at ${preview(s.slice(i))}`)
    i++
  }
  return i
}

function decode3164(content: string, facility: number, severity: number): SyslogMessage {
  let rest = content
  let timestamp: string | undefined
  const bsd = bsdTime.exec(rest)
  if (bsd !== null) {
    timestamp = bsd[0].slice(0, -1)
    rest = rest.slice(bsd[0].length)
  } else {
    // rsyslog's RSYSLOG_ForwardFormat: an RFC 3339 time in the BSD layout.
    const sp = rest.indexOf(' ')
    if (sp > 0 && rfc3339Time.test(rest.slice(0, sp))) {
      timestamp = rest.slice(0, sp)
      rest = rest.slice(sp + 1)
    }
  }
  let hostname: string | undefined
  let tag = bsdTag.exec(rest)
  if (tag === null) {
    // RFC 3164 section 4.1.2: HOSTNAME follows TIMESTAMP. Without a TIMESTAMP (iPXE) the first word is a hostname
    // only when a TAG follows it; otherwise the whole line is message text.
    const sp = rest.indexOf(' ')
    const word = sp > 0 ? rest.slice(0, sp) : undefined
    if (word !== undefined && word.length <= maxField.hostname && printable.test(word)) {
      const after = rest.slice(sp + 1)
      const nextTag = bsdTag.exec(after)
      if (timestamp !== undefined || nextTag !== null) {
        hostname = word
        rest = after
        tag = nextTag
      }
    }
  }
  let app: string | undefined
  let procId: string | undefined
  if (tag !== null) {
    app = tag[1]
    procId = tag[2]
    rest = rest.slice(tag[0].length)
  }
  return {
    format: 'rfc3164',
    facility,
    severity,
    ...defined({ timestamp, hostname, app, procId }),
    message: escapeControls(rest),
  }
}

/** The entries of `o` whose value is not undefined (exactOptionalPropertyTypes keeps absent fields absent). */
function defined<T extends Record<string, string | undefined>>(o: T): { [K in keyof T]?: string } {
  const out: { [K in keyof T]?: string } = {}
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k as keyof T] = v
  return out
}

/**
 * C0, DEL and C1 controls as `#ooo` (rsyslog's escape): a line must not break the timeline into two or drive a
 * terminal (installers colour their output with ESC sequences). Tab stays.
 */
export function escapeControls(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\x00-\x08\x0a-\x1f\x7f-\x9f]/g, (c) => `#${c.charCodeAt(0).toString(8).padStart(3, '0')}`)
}

/** The start of a hostile string for an error message: short, controls escaped. */
function preview(s: string): string {
  return JSON.stringify(s.length > 40 ? `${s.slice(0, 40)}...` : s)
}
