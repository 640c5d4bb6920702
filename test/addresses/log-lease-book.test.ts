/**
 * The embedded lease book: the lease log behind the LeaseBook interface (lookups by MAC and by address, release and
 * decline as records, a reopen is a restart, a damaged log's problems surface as the book's).
 */
import t from 'tap'
import { appendFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openLogLeaseBook } from '../../src/addresses/log-lease-book.js'

const HOUR = 3_600_000

t.test('grant, renew, move, release, decline through the log; a reopen has them back', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'pxebox-logbook-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'leases.log')
  const at = Date.parse('2026-11-28T01:00:00Z')
  const book = await openLogLeaseBook(file)
  t.equal(book.backend, 'log')
  t.equal(book.up, true)
  const a = { mac: '02:00:00:00:00:01', ip: '10.213.40.10', expires: at + HOUR, at }
  const b = { mac: '02:00:00:00:00:02', ip: '10.213.40.11', expires: at + HOUR, at }
  await book.grant(a)
  await book.grant(b)
  t.same(await book.renew({ ...a, expires: at + 2 * HOUR, at: at + 1 }), { queued: false })
  t.same(book.byAddress('10.213.40.10'), { ...a, expires: at + 2 * HOUR, at: at + 1 })
  const moved = { ...b, ip: '10.213.40.12', at: at + 2 }
  await book.grant(moved)
  t.equal(book.byAddress('10.213.40.11'), undefined, 'the old address names nobody once its client moved')
  t.same(book.byAddress('10.213.40.12'), moved)
  t.equal(await book.release(a.mac, '10.213.40.99', at + 3), undefined, 'not the client\'s address: nothing written')
  t.same(await book.release(a.mac, a.ip, at + 3), { ...a, expires: at + 3, at: at + 3 })
  t.same(await book.decline(b.mac, '10.213.40.12', at + 4), { ...moved, expires: at + 4, at: at + 4 })
  t.equal(await book.expire(at + 3 * HOUR), 0, 'the log frees nothing: an expired lease is free by its time')
  const lines = (await readFile(file, 'utf8')).trim().split('\n')
  t.equal(lines.length, 6, 'each change one appended line')
  await book.close()

  await appendFile(file, '{"mac":"02:00:00:00:00:03","ip":"10.213.40.13","exp')
  const again = await openLogLeaseBook(file)
  t.teardown(() => again.close())
  t.same(again.byMac(a.mac), { ...a, expires: at + 3, at: at + 3 }, 'the released record is back')
  t.same(again.byAddress('10.213.40.12'), { ...moved, expires: at + 4, at: at + 4 })
  t.equal(again.all().length, 2)
  t.match(again.problems, [{ reason: /incomplete record/ }], 'the torn tail is the book\'s problem, with its offset')
  t.type(again.problems[0]?.offset, 'number')
})
