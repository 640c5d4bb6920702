// Count passed/failed tests in tap's TAP output: every first-level subtest (indented 4 spaces) of a test file is one
// test; a test file that failed without any failing subtest (a crash, a timeout) counts as one failure.
//   node scripts/count-tap.mjs tap.txt              -> "passed failed"
//   node scripts/count-tap.mjs tap.txt --failures   -> one line per failure: "<file> :: <test>"
// The failures are listed so CI's last lines name them: the log's tail is often all that is kept of a run.
import { readFileSync } from 'node:fs'
const lines = readFileSync(process.argv[2], 'utf8').split('\n')
const listFailures = process.argv.includes('--failures')
let passed = 0, failed = 0
let fileFailures = []
const failures = []
for (const line of lines) {
  let m
  if (/^    ok \d+/.test(line)) passed++
  else if ((m = /^    not ok \d+ - (.*)$/.exec(line))) { failed++; fileFailures.push(m[1]) }
  else if ((m = /^not ok \d+ - (.*)$/.exec(line))) {
    const file = m[1].replace(/ # .*$/, '')
    if (fileFailures.length === 0) { failed++; failures.push(`${file} :: (the file failed outside any test: ${m[1]})`) }
    for (const t of fileFailures) failures.push(`${file} :: ${t}`)
    fileFailures = []
  }
  else if (/^ok \d+/.test(line)) fileFailures = []
}
if (listFailures) { for (const f of failures) console.log(f) }
else console.log(passed, failed)
