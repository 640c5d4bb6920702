/**
 * pxebox's TFTP server as a standalone process for the benchmark (so it runs in its own network namespace like the
 * C servers). Run: node dist/bench/tftp-serve.js --root DIR [--address 127.0.0.1] [--port 69]
 */
import { startTftp } from '../src/tftp/server.js'

function arg(name: string, fallback?: string): string {
  const i = process.argv.indexOf(`--${name}`)
  const v = i >= 0 ? process.argv[i + 1] : fallback
  if (v === undefined) throw new Error(`--${name} is required`)
  return v
}

const server = await startTftp({
  address: arg('address', '127.0.0.1'),
  port: Number(arg('port', '69')),
  root: arg('root'),
  // Every benchmark client is 127.0.0.1; the C servers have no per-client rate limit or transfer share either.
  limits: { maxTransfers: 1000, maxRequestsPerClientPerSecond: 100_000, maxTransfersPerClient: 1000 },
})
process.stderr.write(`pxebox tftp listening on ${server.address}:${server.port}\n`)
process.on('SIGTERM', () => void server.close().then(() => process.exit(0)))
