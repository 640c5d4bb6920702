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
