/**
 * Child process for test/daemon/boot-under-load.test.ts, run with `ip netns exec` in the daemon's namespace (TFTP's
 * port 69 is fixed, so the daemon cannot share the test machine's loopback with other tests). Fetches `file` over
 * TFTP `runs` times in lock-step at blksize 1468, as EDK2's MTFTP4 does, and prints one JSON line: every block's round
 * trip in ms (ACK sent to the next DATA in; test/helpers/tftp-client.ts) and each run's SHA-256.
 *
 * The project's own client, not tftp-hpa or atftp: neither reports a per-block round trip (atftp's --trace prints the
 * packets without times, and timing its piped output would measure the pipe).
 */
import { tftpGet } from '../helpers/tftp-client.js'

const args = JSON.parse(process.argv[2] ?? '{}') as { host: string; file: string; runs: number }
const rtts: number[] = []
const sha256: string[] = []
for (let i = 0; i < args.runs; i++) {
  const r = await tftpGet({ host: args.host, port: 69, file: args.file, blksize: 1468, keepData: false, blockRtts: rtts })
  sha256.push(r.sha256)
}
process.stdout.write(JSON.stringify({ rtts, sha256 }) + '\n')
