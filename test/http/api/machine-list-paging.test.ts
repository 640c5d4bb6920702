/**
 * Issue 13 item 12: an unauthenticated `GET /v1/machines` over 10,000 records cost 0.62 s of event loop (every view
 * serialized and checked); four at once delayed DHCP offers. The list is paged: one response is bounded.
 */
import t from 'tap'
import { bootEvents, operatorApp } from './fixture.js'

const mac = (i: number) => `52:54:00:12:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`

t.test('a listing of 10,000 records is paged and one page is bounded', async (t) => {
  const o = await operatorApp(t)
  const start = Date.now() - 3_600_000
  for (let i = 0; i < 10_000; i++) o.feed(bootEvents(mac(i), `10.213.${12 + (i >> 8)}.${i & 0xff}`, 2, start + i * 100))
  t.equal(o.machines.list().length, 10_000)

  const first = await o.app.inject({ url: '/v1/machines' })
  t.equal(first.statusCode, 200)
  const page = first.json()
  t.equal(page.machines.length, 200, 'the default page')
  t.equal(page.total, 10_000)
  t.equal(page.next_offset, 200)
  t.equal(page.counts.stuck, 10_000, 'counts cover every record, not just the page')
  t.ok(first.body.length < 1_000_000, `one default page is ${first.body.length} bytes`)

  // Following next_offset visits every machine once, in order.
  const seen = new Set<string>()
  let offset: number | undefined = 0
  let pages = 0
  while (offset !== undefined) {
    const r = await o.app.inject({ url: `/v1/machines?limit=1000&offset=${offset}` })
    t.equal(r.statusCode, 200)
    const body = r.json() as { machines: { mac: string }[]; next_offset?: number }
    t.ok(body.machines.length <= 1000)
    for (const m of body.machines) seen.add(m.mac)
    offset = body.next_offset
    pages++
  }
  t.equal(pages, 10)
  t.equal(seen.size, 10_000)

  const tooBig = await o.app.inject({ url: '/v1/machines?limit=5000' })
  t.equal(tooBig.statusCode, 400)
  t.match(tooBig.json().error, /limit must be 1 to 1000/)
  t.equal((await o.app.inject({ url: '/v1/machines?limit=abc' })).statusCode, 400)
  const filtered = (await o.app.inject({ url: '/v1/machines?status=done&limit=5' })).json()
  t.same([filtered.total, filtered.machines.length, filtered.next_offset], [0, 0, undefined])
})
