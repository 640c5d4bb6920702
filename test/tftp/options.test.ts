/**
 * Option negotiation as a table: what a client asks, what we answer (RFC 2347-2349, 7440).
 */
import t from 'tap'
import { negotiate, blksizeForMtu } from '../../src/tftp/options.js'
import type { TftpOption } from '../../src/tftp/packet.js'

const limits = { mtu: 1500, maxBlockSize: 1468, maxWindowSize: 32 }

t.test('negotiation table', async (t) => {
  const table: Array<[string, TftpOption[], Partial<typeof limits>, object]> = [
    ['no options: no OACK, RFC 1350 defaults', [], {}, { oack: [], blksize: 512, windowsize: 1, tsizeRequested: false }],
    ['EDK2 probe', [['tsize', '0'], ['blksize', '1468']], {}, { oack: [['tsize', '4096'], ['blksize', '1468']], blksize: 1468, tsizeRequested: true }],
    ['blksize clamped to the MTU', [['blksize', '65464']], { maxBlockSize: 9000 }, { oack: [['blksize', '1468']], blksize: 1468 }],
    ['jumbo MTU', [['blksize', '65464']], { maxBlockSize: 9000, mtu: 9000 }, { oack: [['blksize', '8968']], blksize: 8968 }],
    ['blksize clamped to the cap', [['blksize', '1468']], { maxBlockSize: 1024 }, { oack: [['blksize', '1024']], blksize: 1024 }],
    ['blksize below 8 is not accepted', [['blksize', '7']], {}, { oack: [], blksize: 512 }],
    ['smallest blksize', [['blksize', '8']], {}, { oack: [['blksize', '8']], blksize: 8 }],
    ['garbage blksize ignored', [['blksize', '12a']], {}, { oack: [], blksize: 512 }],
    ['windowsize capped', [['windowsize', '64']], {}, { oack: [['windowsize', '32']], windowsize: 32 }],
    ['windowsize 0 refused', [['windowsize', '0']], {}, { oack: [], windowsize: 1 }],
    ['windowsize 65536 refused', [['windowsize', '65536']], {}, { oack: [], windowsize: 1 }],
    ['timeout echoed', [['timeout', '3']], {}, { oack: [['timeout', '3']], timeoutMs: 3000 }],
    ['timeout out of range', [['timeout', '0'], ['Timeout', '5']], {}, { oack: [] }],
    ['names are case-insensitive, first one wins', [['BLKSIZE', '1024'], ['blksize', '512']], {}, { oack: [['blksize', '1024']], blksize: 1024 }],
    ['unknown options are left out', [['multicast', ''], ['rollover', '0'], ['windowsize', '16']], {}, { oack: [['windowsize', '16']], windowsize: 16 }],
  ]
  for (const [name, options, extra, expected] of table) {
    t.match(negotiate(options, 4096, { ...limits, ...extra }), expected, name)
  }
  t.equal(blksizeForMtu(1500), 1468)
  // RFC 2349: the OACK must carry the client's own timeout, so one above the cap is left out, not lowered.
  const capped = negotiate([['timeout', '255'], ['blksize', '1024']], 1, { ...limits, maxTimeoutSeconds: 10 })
  t.same(capped.oack, [['blksize', '1024']], 'timeout above the cap is not acknowledged')
  t.equal(capped.timeoutMs, undefined, 'and the server keeps its own timer')
  t.same(negotiate([['timeout', '10']], 1, { ...limits, maxTimeoutSeconds: 10 }).oack, [['timeout', '10']], 'at the cap it is')
  t.equal(blksizeForMtu(1500, true), 1448)
  t.match(negotiate([['blksize', '1468']], 1, { ...limits, ipv6: true }), { blksize: 1448 })
})
