// A lock-step transfer of an in-memory file runs inside the addon, on its runner thread (TransferSocket.run): the
// retransmit timer, loss, duplicates and aborts must behave as when JS sees every ACK. runTransfer on a native socket,
// against a dgram client.
import t from 'tap'
import { runCases } from './transfer-run-cases.js'

runCases(t, true)
