/**
 * Syslog lines as real senders put them on the wire, each with the fields the codec must find. Where a line was
 * captured on this machine the source says so; the others follow the sender's documented format.
 */
import type { SyslogMessage } from '../../src/syslog/message.js'

/** One line on the wire and what it decodes to. */
export interface RealLine {
  source: string
  wire: string
  decoded: SyslogMessage
}

const tq = '[timeQuality tzKnown="1" isSynced="0"]'

export const realLines: RealLine[] = [
  // iPXE's syslog console (src/net/udp/syslog.c): "<%d>%s%s%s%sipxe: %s", facility 0, severity 6 unless an ANSI
  // escape set it (errors are 3); hostname.domain when DHCP gave them. Not compiled into Debian's 2019 build.
  {
    source: 'iPXE, no hostname',
    wire: '<6>ipxe: http://10.213.47.1:8080/ipxe?mac=52-54-00-e2-2f-01... ok',
    decoded: { format: 'rfc3164', facility: 0, severity: 6, app: 'ipxe', message: 'http://10.213.47.1:8080/ipxe?mac=52-54-00-e2-2f-01... ok' },
  },
  {
    source: 'iPXE, hostname and domain from DHCP, an error line',
    wire: '<3>node1.lab.example ipxe: Could not boot: No such file or directory (http://ipxe.org/2d12608e)',
    decoded: {
      format: 'rfc3164', facility: 0, severity: 3, hostname: 'node1.lab.example', app: 'ipxe',
      message: 'Could not boot: No such file or directory (http://ipxe.org/2d12608e)',
    },
  },
  {
    source: 'iPXE, an empty line',
    wire: '<6>ipxe: ',
    decoded: { format: 'rfc3164', facility: 0, severity: 6, app: 'ipxe', message: '' },
  },
  // util-linux 2.38.1 logger -n 127.0.0.1 -P PORT -d (captured here): RFC 5424 is its default.
  {
    source: 'util-linux logger -n (default, -p local0.warning)',
    wire: `<132>1 2026-11-27T15:37:17.650635+00:00 vm pxebox-test - - ${tq} hello rfc3164 default`,
    decoded: {
      format: 'rfc5424', facility: 16, severity: 4, timestamp: '2026-11-27T15:37:17.650635+00:00', hostname: 'vm',
      app: 'pxebox-test', structuredData: tq, message: 'hello rfc3164 default',
    },
  },
  {
    source: 'util-linux logger -n --rfc5424 -p daemon.err',
    wire: `<27>1 2026-11-27T15:37:18.047436+00:00 vm pxebox-test - - ${tq} hello --rfc5424`,
    decoded: {
      format: 'rfc5424', facility: 3, severity: 3, timestamp: '2026-11-27T15:37:18.047436+00:00', hostname: 'vm',
      app: 'pxebox-test', structuredData: tq, message: 'hello --rfc5424',
    },
  },
  {
    source: 'util-linux logger -n --rfc5424=notq,notime',
    wire: '<13>1 - vm pxebox-test - - - hello --rfc5424=notq,notime',
    decoded: { format: 'rfc5424', facility: 1, severity: 5, hostname: 'vm', app: 'pxebox-test', message: 'hello --rfc5424=notq,notime' },
  },
  {
    source: 'util-linux logger -n --rfc5424 --msgid --sd-id --sd-param',
    wire: `<13>1 2026-11-27T15:37:18.253142+00:00 vm pxebox-test - ABC ${tq}[zoo@123 tiger="hungry"] with sd`,
    decoded: {
      format: 'rfc5424', facility: 1, severity: 5, timestamp: '2026-11-27T15:37:18.253142+00:00', hostname: 'vm',
      app: 'pxebox-test', msgId: 'ABC', structuredData: `${tq}[zoo@123 tiger="hungry"]`, message: 'with sd',
    },
  },
  {
    source: 'util-linux logger -n -i (PROCID)',
    wire: `<13>1 2026-11-27T15:37:18.620513+00:00 vm pxebox-test 18414 - ${tq} with pid`,
    decoded: {
      format: 'rfc5424', facility: 1, severity: 5, timestamp: '2026-11-27T15:37:18.620513+00:00', hostname: 'vm',
      app: 'pxebox-test', procId: '18414', structuredData: tq, message: 'with pid',
    },
  },
  {
    source: 'util-linux logger -n --rfc3164',
    wire: '<13>Nov 27 15:37:17 vm pxebox-test: hello --rfc3164',
    decoded: { format: 'rfc3164', facility: 1, severity: 5, timestamp: 'Nov 27 15:37:17', hostname: 'vm', app: 'pxebox-test', message: 'hello --rfc3164' },
  },
  {
    source: 'util-linux logger -n --rfc3164 -i',
    wire: '<13>Nov 27 15:37:18 vm pxebox-test[18418]: 3164 with pid',
    decoded: {
      format: 'rfc3164', facility: 1, severity: 5, timestamp: 'Nov 27 15:37:18', hostname: 'vm', app: 'pxebox-test',
      procId: '18418', message: '3164 with pid',
    },
  },
  // busybox 1.35 has no logger -n: syslogd -R HOST:PORT forwards what libc's syslog() wrote to /dev/log, newline
  // included, without a HOSTNAME (captured here; Debian's installer logs this way).
  {
    source: 'busybox syslogd -R + logger -t -p local0.warn',
    wire: '<132>Nov 27 15:37:07 pxebox-test: hello from busybox logger\n',
    decoded: { format: 'rfc3164', facility: 16, severity: 4, timestamp: 'Nov 27 15:37:07', app: 'pxebox-test', message: 'hello from busybox logger' },
  },
  {
    source: 'busybox syslogd -R + logger (default tag: the user)',
    wire: '<13>Nov 27 15:37:07 root: no tag busybox\n',
    decoded: { format: 'rfc3164', facility: 1, severity: 5, timestamp: 'Nov 27 15:37:07', app: 'root', message: 'no tag busybox' },
  },
  {
    source: 'Debian installer (busybox syslogd -R), day padded with a space',
    wire: "<13>Nov  7 09:40:01 main-menu[247]: INFO: Menu item 'netcfg' selected\n",
    decoded: {
      format: 'rfc3164', facility: 1, severity: 5, timestamp: 'Nov  7 09:40:01', app: 'main-menu', procId: '247',
      message: "INFO: Menu item 'netcfg' selected",
    },
  },
  // rsyslog forwarding (anaconda's inst.syslog= runs rsyslog): its three stock forward templates.
  {
    source: 'rsyslog RSYSLOG_TraditionalForwardFormat',
    wire: '<30>Nov 27 15:37:18 installer systemd[1]: Started anaconda.service.',
    decoded: {
      format: 'rfc3164', facility: 3, severity: 6, timestamp: 'Nov 27 15:37:18', hostname: 'installer', app: 'systemd',
      procId: '1', message: 'Started anaconda.service.',
    },
  },
  {
    source: 'rsyslog RSYSLOG_ForwardFormat (RFC 3339 time in the BSD layout)',
    wire: '<14>2026-11-27T15:37:18.123456+00:00 installer anaconda[1234]: Starting installer, one moment...',
    decoded: {
      format: 'rfc3164', facility: 1, severity: 6, timestamp: '2026-11-27T15:37:18.123456+00:00', hostname: 'installer',
      app: 'anaconda', procId: '1234', message: 'Starting installer, one moment...',
    },
  },
  {
    source: 'rsyslog RSYSLOG_SyslogProtocol23Format (trailing newline, UTF-8 BOM)',
    wire: '<13>1 2026-11-27T15:37:18.123456+00:00 installer anaconda 1234 - - \ufeffStarting installer\n',
    decoded: {
      format: 'rfc5424', facility: 1, severity: 5, timestamp: '2026-11-27T15:37:18.123456+00:00', hostname: 'installer',
      app: 'anaconda', procId: '1234', message: 'Starting installer',
    },
  },
  {
    source: 'RFC 5424 section 6.5 example 3 (escaped SD values, no MSG)',
    wire: '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Appl\\]ic\\"ation"]',
    decoded: {
      format: 'rfc5424', facility: 20, severity: 5, timestamp: '2003-10-11T22:14:15.003Z', hostname: 'mymachine.example.com',
      app: 'evntslog', msgId: 'ID47', structuredData: '[exampleSDID@32473 iut="3" eventSource="Appl\\]ic\\"ation"]', message: '',
    },
  },
  {
    source: 'RFC 3164 section 5.4 example 1',
    wire: "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    decoded: {
      format: 'rfc3164', facility: 4, severity: 2, timestamp: 'Oct 11 22:14:15', hostname: 'mymachine', app: 'su',
      message: "'su root' failed for lonvick on /dev/pts/8",
    },
  },
  {
    source: 'a BSD line with a time and host but no tag',
    wire: '<13>Nov 27 15:37:18 switch7 link down on port 3',
    decoded: { format: 'rfc3164', facility: 1, severity: 5, timestamp: 'Nov 27 15:37:18', hostname: 'switch7', message: 'link down on port 3' },
  },
]
