import t from 'tap'
import { LABEL_LIMITS, labelsFromQuery, normalizeLabels } from '../../src/catalog/labels.js'

t.test('labels from a query are bounded in length and number (issue 13 item 9)', async (t) => {
  const long = 'x'.repeat(LABEL_LIMITS.maxValueLength + 1)
  const { labels, dropped } = labelsFromQuery({ mac: '52-54-00-12-34-56', hostname: long, serial: 'SN-1', uuid: long })
  t.same(labels, { mac: '52:54:00:12:34:56', serial: 'SN-1' })
  t.same(dropped, [`hostname=${long.slice(0, 64)}`, `uuid=${long.slice(0, 64)}`])
  t.equal(labelsFromQuery({ hostname: 'y'.repeat(LABEL_LIMITS.maxValueLength) }).labels.hostname?.length, LABEL_LIMITS.maxValueLength, 'at the limit is kept')

  const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`k${i}`, 'v']))
  const r = labelsFromQuery(many)
  t.equal(Object.keys(r.labels).length, LABEL_LIMITS.maxLabels)
  t.equal(r.dropped.length, LABEL_LIMITS.maxLabels, 'the dropped list is bounded too')
  t.same(normalizeLabels({ serial: long, arch: 'x86_64' }), { arch: 'x86_64' })
})

t.test('serial_hex (/boot.ipxe ${serial:hexraw}) becomes the serial label, whatever bytes the serial holds', async (t) => {
  const serial = 'A&B=C +é/1'
  const hex = Buffer.from(serial, 'utf8').toString('hex')
  t.same(labelsFromQuery({ mac: '52-54-00-12-34-56', serial_hex: hex }).labels, { mac: '52:54:00:12:34:56', serial })
  t.same(labelsFromQuery({ serial_hex: Buffer.from(' SN\r\n1 ').toString('hex') }).labels, { serial: 'SN 1' }, 'controls as spaces, trimmed')
  const bad = labelsFromQuery({ serial_hex: 'zz' })
  t.same(bad, { labels: {}, dropped: ['serial_hex=zz'] })
  t.same(labelsFromQuery({ serial_hex: '' }).labels, {}, 'an unset serial sends nothing')
})
