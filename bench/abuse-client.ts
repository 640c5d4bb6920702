/**
 * bench/abuse's valid PXE client, run inside its own namespace with `ip netns exec`: one UEFI machine (OVMF's real
 * packets, one fixed MAC) that boots again and again while the floods run, and prints one JSON line per attempt
 * (AttemptRecord) as it goes, so whatever stops it, the attempts so far are kept.
 *
 * One attempt, as EDK2 then iPXE do it:
 *  1. DISCOVER broadcast from port 68; the OFFER's latency is timed from the first DISCOVER. Retransmitted after 4 s
 *     (EDK2's first DHCP timeout, RFC 2131 section 4.1), given up at 8 s.
 *  2. proxy mode: the boot-server REQUEST to pxebox:4011 from the client's address (frame 6 of the fixture), ACK
 *     within 4 s (one retransmission at 2 s). authoritative mode: the REQUEST for the offered address on 67 instead.
 *  3. TFTP RRQ of the boot file (blksize 1468, tsize) to completion within 15 s, its SHA-256 checked.
 *  4. HTTP GET /boot.ipxe and /ipxe?mac=<mac>, both must answer 200 with a body.
 * Every step is tried even when an earlier one failed, so each service's success rate stands on its own.
 *
 * The client's address is static (the site DHCP server's job in proxy mode; in authoritative mode the bench keeps a
 * fixed address outside the range for TFTP and HTTP, since the namespace cannot take the leased one mid-run).
 *
 * Usage: node dist/bench/abuse-client.js '<json AbuseClientArgs>'
 */
import { createSocket, type Socket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { createHash } from 'node:crypto'
import http from 'node:http'
import { fileURLToPath } from 'node:url'
import { DhcpMessageType, DhcpOptionCode, decode, encode, ipv4Option, messageType, parseIPv4, type DhcpPacket } from '../src/dhcp/index.js'
import { tftpGet } from '../test/helpers/tftp-client.js'
import { forClient, ovmfTemplates } from './lib/ovmf-packets.js'

/** What the orchestrator passes (as one JSON argument). */
export interface AbuseClientArgs {
  mode: 'proxy' | 'authoritative'
  /** pxebox's address (DHCP server id, TFTP, HTTP). */
  server: string
  httpPort: number
  /** This client's own address, the source of the 4011 REQUEST, TFTP and HTTP. */
  clientIp: string
  mac: string
  /** The boot file to fetch over TFTP, and the local copy it must match. */
  bootFile: string
  bootFileLocal: string
  /** Pause between attempts. */
  intervalMs: number
}

/** One boot attempt: what each step took, or why it failed. Times in ms. */
export interface AttemptRecord {
  /** Start of the attempt, ms since the client started. */
  at: number
  /** First DISCOVER -> OFFER, or null when no OFFER came within 8 s. */
  offerMs: number | null
  discovers: number
  /** 4011 (or authoritative 67) REQUEST -> ACK, or null. */
  ackMs: number | null
  tftpOk: boolean
  tftpMs: number
  httpOk: boolean
  httpMs: number
  /** First failure reason per failed step. */
  errors: Record<string, string>
}

/** The attempt in progress when the run ended: how far it got and how long it had been waiting there. */
export interface CutShortRecord {
  cutShort: true
  at: number
  step: 'offer' | 'ack' | 'tftp' | 'http'
  waitedMs: number
  /** The steps it had finished, e.g. "offer 206 ms", "TFTP failed: ...". */
  sofar: string[]
  /** One of those steps failed: the attempt had failed already. */
  failed: boolean
}

const OFFER_RETRY_MS = 4000
const OFFER_GIVE_UP_MS = 8000
const ACK_RETRY_MS = 2000
const ACK_GIVE_UP_MS = 4000
const HTTP_TIMEOUT_MS = 5000
/** A whole boot-file transfer: ~0.2 s for snponly.efi when served at all; a crawl this slow is a failed boot. */
const TFTP_GIVE_UP_MS = 15_000

/** Calls `send` now and every `retryMs` until a reply of type `want` (or a NAK) to `xid` arrives on `socket`. */
function exchange(
  socket: Socket,
  send: () => void,
  xid: number,
  want: number,
  retryMs: number,
  giveUpMs: number,
): Promise<{ packet: DhcpPacket | undefined; sends: number }> {
  return new Promise((resolve) => {
    let sends = 0
    const sendOnce = (): void => {
      sends++
      send()
    }
    const onMessage = (msg: Buffer): void => {
      let p: DhcpPacket
      try {
        p = decode(msg)
      } catch {
        return
      }
      if (p.op !== 2 || p.xid !== xid) return
      const type = messageType(p)
      if (type !== want && type !== DhcpMessageType.NAK) return
      finish(p)
    }
    const retry = setInterval(sendOnce, retryMs)
    const giveUp = setTimeout(() => finish(undefined), giveUpMs)
    const finish = (packet: DhcpPacket | undefined): void => {
      clearInterval(retry)
      clearTimeout(giveUp)
      socket.off('message', onMessage)
      resolve({ packet, sends })
    }
    socket.on('message', onMessage)
    sendOnce()
  })
}

/** GET `path`; resolves with an error message, or undefined on a 200 with a non-empty body. */
function httpGet(host: string, port: number, path: string, localAddress: string): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, localAddress, agent: false, timeout: HTTP_TIMEOUT_MS }, (res) => {
      let bytes = 0
      res.on('data', (d: Buffer) => (bytes += d.length))
      res.on('end', () => resolve(res.statusCode === 200 && bytes > 0 ? undefined : `${path}: HTTP ${res.statusCode}, ${bytes} bytes`))
      res.on('error', (err) => resolve(`${path}: ${err.message}`))
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${HTTP_TIMEOUT_MS} ms`)))
    req.on('error', (err) => resolve(`${path}: ${err.message}`))
  })
}

async function main(args: AbuseClientArgs): Promise<void> {
  const t = ovmfTemplates()
  const expected = createHash('sha256').update(readFileSync(args.bootFileLocal)).digest('hex')
  const started = performance.now()
  const literal = (host: string, _o: unknown, cb: (err: null, address: string, family: number) => void): void => cb(null, host, 4)

  // Port 68 shared with nothing in this namespace; the floods' broadcast OFFERs arrive here too, as on a real VLAN.
  const dhcp = createSocket({ type: 'udp4', reuseAddr: true, lookup: literal })
  await new Promise<void>((resolve) => dhcp.bind(68, '0.0.0.0', () => resolve()))
  dhcp.setBroadcast(true)
  dhcp.setRecvBufferSize(4 << 20)
  // EDK2 sends the boot-server REQUEST from port 4011 of its leased address (fixture frame 6).
  const pxe = createSocket({ type: 'udp4', lookup: literal })
  await new Promise<void>((resolve) => pxe.bind(4011, args.clientIp, () => resolve()))
  for (const s of [dhcp, pxe]) s.on('error', (err) => process.stderr.write(`abuse client socket: ${err.message}\n`))

  // The attempts so far are already printed; the one in progress is reported as cut short (not an attempt), since
  // a starved server can leave it waiting most of a short run.
  let step: CutShortRecord['step'] = 'offer'
  let at = performance.now()
  let stepStart = at
  let sofar: string[] = []
  let errors: Record<string, string> = {}
  const enter = (s: CutShortRecord['step']): void => {
    step = s
    stepStart = performance.now()
  }
  process.on('SIGTERM', () => {
    const cut: CutShortRecord = { cutShort: true, at: Math.round(at - started), step, waitedMs: Math.round(performance.now() - stepStart), sofar, failed: Object.keys(errors).length > 0 }
    process.stdout.write(`${JSON.stringify(cut)}\n`)
    process.exit(0)
  })
  let xid = (Math.random() * 0x7fffffff) >>> 0
  for (;;) {
    at = performance.now()
    sofar = []
    enter('offer')
    errors = {}
    // 1. DISCOVER -> OFFER
    xid = (xid + 2) >>> 0
    const discover = encode(forClient(t.discover, args.mac, xid))
    const offer = await exchange(dhcp, () => dhcp.send(discover, 67, '255.255.255.255'), xid, DhcpMessageType.OFFER, OFFER_RETRY_MS, OFFER_GIVE_UP_MS)
    const offerMs = offer.packet !== undefined && messageType(offer.packet) === DhcpMessageType.OFFER ? performance.now() - at : null
    if (offerMs === null) errors['offer'] = offer.packet === undefined ? `no OFFER within ${OFFER_GIVE_UP_MS} ms (${offer.sends} DISCOVERs)` : 'NAK'
    sofar.push(offerMs === null ? `offer failed: ${errors['offer']}` : `offer ${offerMs.toFixed(0)} ms`)

    // 2. REQUEST -> ACK (4011 in proxy mode; the lease on 67 in authoritative mode)
    const ackXid = (xid + 1) >>> 0
    let ackMs: number | null = null
    enter('ack')
    const t2 = performance.now()
    if (args.mode === 'proxy') {
      const req = forClient(t.pxeRequest, args.mac, ackXid)
      const bytes = encode({ ...req, ciaddr: args.clientIp })
      const ack = await exchange(pxe, () => pxe.send(bytes, 4011, args.server), ackXid, DhcpMessageType.ACK, ACK_RETRY_MS, ACK_GIVE_UP_MS)
      if (ack.packet !== undefined && messageType(ack.packet) === DhcpMessageType.ACK) ackMs = performance.now() - t2
      else errors['ack'] = ack.packet === undefined ? `no 4011 ACK within ${ACK_GIVE_UP_MS} ms` : 'NAK on 4011'
    } else if (offer.packet !== undefined && offerMs !== null) {
      const server = ipv4Option(offer.packet, DhcpOptionCode.SERVER_ID) ?? args.server
      const edits = { [DhcpOptionCode.REQUESTED_IP]: parseIPv4(offer.packet.yiaddr), [DhcpOptionCode.SERVER_ID]: parseIPv4(server) }
      const bytes = encode(forClient(t.request, args.mac, ackXid, edits))
      const ack = await exchange(dhcp, () => dhcp.send(bytes, 67, '255.255.255.255'), ackXid, DhcpMessageType.ACK, ACK_RETRY_MS, ACK_GIVE_UP_MS)
      if (ack.packet !== undefined && messageType(ack.packet) === DhcpMessageType.ACK) ackMs = performance.now() - t2
      else errors['ack'] = ack.packet === undefined ? `no ACK within ${ACK_GIVE_UP_MS} ms` : 'NAK'
    } else {
      errors['ack'] = 'no offer to request'
    }

    sofar.push(ackMs === null ? `ACK failed: ${errors['ack']}` : `ACK ${ackMs.toFixed(0)} ms`)

    // 3. TFTP
    enter('tftp')
    const t3 = performance.now()
    let tftpOk = false
    try {
      const get = tftpGet({ host: args.server, port: 69, file: args.bootFile, blksize: 1468, tsize: true, keepData: false, retransmitMs: 1000, retries: 4 })
      let timer: NodeJS.Timeout | undefined
      const limit = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not complete within ${TFTP_GIVE_UP_MS} ms`)), TFTP_GIVE_UP_MS)
      })
      get.catch(() => undefined) // when the limit wins, the transfer still ends by its own retries
      const r = await Promise.race([get, limit]).finally(() => clearTimeout(timer))
      tftpOk = r.sha256 === expected
      if (!tftpOk) errors['tftp'] = `${args.bootFile}: SHA-256 mismatch (${r.bytes} bytes)`
    } catch (err) {
      errors['tftp'] = (err as Error).message
    }
    const tftpMs = performance.now() - t3
    sofar.push(tftpOk ? `TFTP ok in ${tftpMs.toFixed(0)} ms` : `TFTP failed: ${errors['tftp']}`)

    // 4. HTTP: the script URL iPXE is given, then the profile's script
    enter('http')
    const t4 = performance.now()
    const httpErrors = [
      await httpGet(args.server, args.httpPort, '/boot.ipxe', args.clientIp),
      await httpGet(args.server, args.httpPort, `/ipxe?mac=${args.mac}`, args.clientIp),
    ].filter((e): e is string => e !== undefined)
    if (httpErrors.length > 0) errors['http'] = httpErrors.join('; ')
    const record: AttemptRecord = {
      at: Math.round(at - started),
      offerMs,
      discovers: offer.sends,
      ackMs,
      tftpOk,
      tftpMs: Math.round(tftpMs),
      httpOk: httpErrors.length === 0,
      httpMs: Math.round(performance.now() - t4),
      errors,
    }
    process.stdout.write(`${JSON.stringify(record)}\n`)
    await new Promise((r) => setTimeout(r, args.intervalMs))
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(JSON.parse(process.argv[2] ?? '{}') as AbuseClientArgs)
