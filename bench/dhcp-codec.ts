/**
 * In-process cost of one proxy DISCOVER -> OFFER without sockets (issue 18): decode of OVMF's captured DISCOVER
 * (1,000 copies with distinct chaddr, xid and UUID, bench/lib/ovmf-packets.ts), the proxy policy (src/boot/proxy-policy.ts)
 * with a fixed machine lookup, and encode of the offer. Prints microseconds per packet for each stage, median of the
 * rounds with the min-max, the cost of the process's first 1,000 packets (before V8 optimizes), and the load
 * average: the figures the socket bench (bench/dhcp.sh) cannot separate from the kernel's send and the machine's load.
 *
 * Run: npx tsc -p tsconfig.json && node dist/bench/dhcp-codec.js [--rounds N] [--packets N]
 */
import { loadavg } from 'node:os'
import { decode, encode, type DhcpPacket } from '../src/dhcp/index.js'
import { decideProxyReply, type ProxyContext } from '../src/boot/proxy-policy.js'
import { forClient, ovmfTemplates } from './lib/ovmf-packets.js'
import { num } from './lib/args.js'

const ROUNDS = num('rounds', 5)
const PACKETS = num('packets', 200_000)

const ctx: ProxyContext = {
  serverAddress: '10.213.64.1',
  httpBaseUrl: 'http://10.213.64.1:8080',
  lookup: () => ({ pxe: true, chainloadIpxe: false }),
  chainloadedRecently: () => false,
}

const discovers: Buffer[] = []
const template = ovmfTemplates().discover
for (let i = 0; i < 1000; i++) {
  const mac = `52:54:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`
  discovers.push(encode(forClient(template, mac, 0x10000 + i)))
}

interface Round {
  decode: number
  decide: number
  encode: number
}

/** One round of `n` packets; nanoseconds per stage summed, returned as microseconds per packet. */
function round(n: number): Round {
  let d = 0n
  let c = 0n
  let e = 0n
  let bytes = 0
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint()
    const request = decode(discovers[i % discovers.length] as Buffer)
    const t1 = process.hrtime.bigint()
    const decision = decideProxyReply(request, 'dhcp', ctx)
    const t2 = process.hrtime.bigint()
    if (decision.action !== 'reply') throw new Error(`the policy ignored OVMF's DISCOVER: ${decision.reason}`)
    bytes += encode(decision.reply as DhcpPacket).length
    const t3 = process.hrtime.bigint()
    d += t1 - t0
    c += t2 - t1
    e += t3 - t2
  }
  if (bytes === 0) throw new Error('no offer encoded')
  const us = (ns: bigint): number => Number(ns) / n / 1000
  return { decode: us(d), decide: us(c), encode: us(e) }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)] as number
}

// The first 1,000 run on code V8 has not optimized yet: what a freshly started daemon (and bench/dhcp.sh's, a new
// one per run) pays for its first offers. Then a warm-up, so the rounds measure optimized code.
const cold = round(1000)
round(Math.min(PACKETS, 50_000))
const rounds: Round[] = []
for (let r = 0; r < ROUNDS; r++) rounds.push(round(PACKETS))
const fmt = (xs: number[]): string => `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)})`
console.log(`${ROUNDS} rounds of ${PACKETS} DISCOVERs, load average ${loadavg().map((l) => l.toFixed(2)).join(' ')}`)
console.log('stage | us per packet, median (min-max)')
console.log('--- | ---')
for (const stage of ['decode', 'decide', 'encode'] as const) console.log(`${stage} | ${fmt(rounds.map((r) => r[stage]))}`)
console.log(`total | ${fmt(rounds.map((r) => r.decode + r.decide + r.encode))}`)
console.log(`first 1,000 packets of the process (cold) | ${(cold.decode + cold.decide + cold.encode).toFixed(2)}`)
