// Count passed/failed tests in tap's TAP output: every first-level subtest (indented 4 spaces) of a test file is one
// test; a test file that failed without any failing subtest (a crash, a timeout) counts as one failure.
import { readFileSync } from 'node:fs'
const lines = readFileSync(process.argv[2], 'utf8').split('\n')
let passed = 0, failed = 0, fileFailed = 0
for (const line of lines) {
  if (/^    ok \d+/.test(line)) passed++
  else if (/^    not ok \d+/.test(line)) { failed++; fileFailed++ }
  else if (/^not ok \d+/.test(line)) { if (fileFailed === 0) failed++; fileFailed = 0 }
  else if (/^ok \d+/.test(line)) fileFailed = 0
}
console.log(passed, failed)
