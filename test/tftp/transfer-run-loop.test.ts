// The same scenarios as transfer-run.test.ts with the runner thread off (PXEBOX_TFTP_RUNNER=off, read when the first
// run starts): runs are then served on the event loop, as when the thread cannot be started.
import t from 'tap'
import { runCases } from './transfer-run-cases.js'

process.env.PXEBOX_TFTP_RUNNER = 'off'
runCases(t, false)
