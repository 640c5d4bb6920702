import t from 'tap'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { neighbourTableAdvice, readNeighbourLimits, suggestedLimits } from '../../src/host/neighbour-table.js'
import { warnNeighbourTable } from '../../src/daemon/preflight.js'
import { parseConfig } from '../../src/config/load.js'

t.test('the limits are read from /proc/sys; unreadable or nonsense values give no limits (and so no advice)', async (t) => {
  const files: Record<string, string> = {
    '/proc/sys/net/ipv4/neigh/default/gc_thresh2': '512\n',
    '/proc/sys/net/ipv4/neigh/default/gc_thresh3': '1024\n',
  }
  t.same(readNeighbourLimits((p) => files[p] ?? ''), { gcThresh2: 512, gcThresh3: 1024 })
  t.equal(readNeighbourLimits(() => { throw Object.assign(new Error('no /proc/sys'), { code: 'ENOENT' }) }), undefined)
  t.equal(readNeighbourLimits(() => 'many\n'), undefined)
  t.equal(readNeighbourLimits(() => '0\n'), undefined)
  // This kernel's own: Linux always shows them to root.
  const real = readNeighbourLimits()
  t.ok(real !== undefined && real.gcThresh3 >= real.gcThresh2, `this kernel: ${JSON.stringify(real)}`)
})

t.test('advice only when the machines do not fit under the soft limit, with values that fit them', async (t) => {
  const limits = { gcThresh2: 512, gcThresh3: 1024 }
  t.equal(neighbourTableAdvice(512, limits), undefined, 'at the limit: fine')
  const advice = neighbourTableAdvice(1000, limits) ?? ''
  t.match(advice, /1000 machines/)
  t.match(advice, /above 512 \(net\.ipv4\.neigh\.default\.gc_thresh2\) and refused above 1024/)
  t.match(advice, /gc_thresh1=512 net\.ipv4\.neigh\.default\.gc_thresh2=2048 net\.ipv4\.neigh\.default\.gc_thresh3=4096/)
  t.same(suggestedLimits(5000), { gcThresh1: 4096, gcThresh2: 16384, gcThresh3: 32768 })
  const s = suggestedLimits(1)
  t.ok(s.gcThresh1 >= 1 && s.gcThresh2 > s.gcThresh1 && s.gcThresh3 > s.gcThresh2, 'sane even for one machine')
})

const config = (dhcp: string) =>
  parseConfig(`interface: eth0\naddress: 10.0.0.2\ndata_dir: /tmp/pxebox-neigh-test\n${dhcp}`, 'config.yaml')

t.test('the daemon warns from the known machines or the authoritative range, whichever is larger, with the figures in the log line', async (t) => {
  const lines: Record<string, unknown>[] = []
  const logger = pino({ level: 'info' }, new Writable({ write: (chunk, _e, cb) => (lines.push(JSON.parse(String(chunk))), cb()) }))
  const limits = { gcThresh2: 512, gcThresh3: 1024 }

  t.equal(warnNeighbourTable(config('dhcp: { mode: proxy }\n'), 100, logger, limits), undefined, 'a small lab: no warning')
  t.match(warnNeighbourTable(config('dhcp: { mode: proxy }\n'), 3000, logger, limits), /3000 machines/, 'many known machines')
  const authoritative = config('dhcp: { mode: authoritative, range: { start: 10.0.0.10, end: 10.0.3.254 } }\n')
  t.match(warnNeighbourTable(authoritative, 20, logger, limits), /1013 machines/, 'a /22 range of 1,013 addresses, few machines known yet')
  t.equal(warnNeighbourTable(authoritative, 20, logger, { gcThresh2: 4096, gcThresh3: 8192 }), undefined, 'raised limits: no warning')
  t.equal(warnNeighbourTable(authoritative, 20, logger, undefined), undefined, 'limits unknown: nothing said')
  t.equal(lines.length, 2, 'one warning per problem')
  t.match(lines[1], { level: 40, machines: 1013, known_machines: 20, range_size: 1013, gc_thresh2: 512, gc_thresh3: 1024 })
})
