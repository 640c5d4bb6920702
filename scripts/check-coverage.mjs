// Coverage thresholds the suite honestly holds (tap's own default is a silent 100%, which no suite with real
// network and VM tests meets). Reads tap's json-summary report; exits 1 below a threshold.
import { readFileSync } from 'node:fs'
const thresholds = { lines: 80, statements: 80, functions: 75, branches: 70 }
const total = JSON.parse(readFileSync(new URL('../.tap/report/coverage-summary.json', import.meta.url), 'utf8')).total
let ok = true
for (const [kind, min] of Object.entries(thresholds)) {
  const pct = total[kind].pct
  const good = pct >= min
  ok &&= good
  console.log(`coverage ${kind}: ${pct}% (threshold ${min}%)${good ? '' : '  BELOW THRESHOLD'}`)
}
process.exit(ok ? 0 : 1)
