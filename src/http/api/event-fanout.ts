/**
 * The fan-out behind `GET /v1/events`: one subscription to the machine store for all streams, changes coalesced per
 * machine, each change rendered ONCE (one `viewOf` and one `JSON.stringify`) and the same string written to every
 * stream. Before this, each stream rendered every change itself and wrote into an unbounded buffer: 1,000 streams
 * that never read took pxebox from 116 MB to 2.75 GB and starved DHCP (issue 13 item 2).
 *
 * Bounds, stated for the operator (README "Security"):
 * - at most `maxStreams` streams at once; one more is answered 503 (the dashboard retries);
 * - a batch is encoded once, to one Buffer every stream is given, and written a few streams per loop turn;
 * - per stream at most `maxQueuedBytes` not yet taken by the kernel. A stream already past that when the next batch is
 *   due is a slow reader: it is closed and counted (`dropped.slow_reader`). Its dashboard reconnects after the
 *   `retry:` delay and reloads the machine list, which is the resync for what it missed. Memory for streams is
 *   therefore at most maxStreams x (maxQueuedBytes + one batch), and the batch string itself is shared;
 * - a burst that changes more than `maxBatchMachines` machines in one coalescing window is sent as one
 *   `event: resync` (reload the list) instead of thousands of views: a rack power-on costs one line per stream.
 */
import type { ServerResponse } from 'node:http'

/** Options for createEventFanout. */
export interface EventFanoutOptions {
  /** Called with a MAC after every machine change; returns the unsubscribe function (MachineStore.subscribe). */
  readonly subscribe: (listener: (mac: string) => void) => () => void
  /** The SSE frame for one machine now: `event: machine` with its view, or `event: forget` when it is gone. */
  readonly render: (mac: string) => string
  /** Streams open at once. */
  readonly maxStreams: number
  /** Bytes a stream may have queued (written, not yet taken by its socket) before it counts as a slow reader. */
  readonly maxQueuedBytes: number
  /** Machines per coalescing window above which one `resync` event is sent instead of their views. */
  readonly maxBatchMachines: number
  /** Coalescing window: a machine changing 50 times in it is rendered once. */
  readonly coalesceMs: number
  /** A comment line this often keeps proxies and NAT from closing an idle stream. */
  readonly keepaliveMs: number
  /** Streams written per event-loop turn (default 32): a broadcast to many streams never holds the loop long. */
  readonly streamsPerTurn?: number
  /** Where closed streams are reported (a pino logger). */
  readonly logger: { info(obj: object, msg: string): void }
}

/** Why a stream ended on pxebox's side. */
export type StreamDropReason = 'slow_reader' | 'write_error'

/** What the fan-out has done, for tests, logs and metrics. */
export interface EventFanoutStats {
  /** Streams open now. */
  readonly streams: number
  /** Bytes written to open streams and not yet taken by their sockets. */
  readonly queuedBytes: number
  /** Streams refused because `maxStreams` were open. */
  readonly refused: number
  /** Streams pxebox closed, by reason. */
  readonly dropped: Readonly<Record<StreamDropReason, number>>
  /** Batches rendered (each rendered once, whatever the number of streams). */
  readonly batches: number
  /** Bursts sent as `event: resync`. */
  readonly resyncs: number
}

/** The shared event fan-out. */
export interface EventFanout {
  /** Start streaming to `res` (headers already sent by the caller). False when `maxStreams` are open: answer 503. */
  attach(res: ServerResponse): boolean
  stats(): EventFanoutStats
  /** End every stream (server shutdown). */
  close(): void
}

/** The event a client gets when it should reload the machine list instead of applying single changes. */
export const RESYNC_FRAME = 'event: resync\ndata: {}\n\n'

/** Create the fan-out; it subscribes to the store only while streams are open. */
export function createEventFanout(opts: EventFanoutOptions): EventFanout {
  const streams = new Set<ServerResponse>()
  const due = new Set<string>()
  const dropped: Record<StreamDropReason, number> = { slow_reader: 0, write_error: 0 }
  let refused = 0
  let batches = 0
  let resyncs = 0
  let flushTimer: NodeJS.Timeout | undefined
  let keepalive: NodeJS.Timeout | undefined
  let unsubscribe: (() => void) | undefined
  const streamsPerTurn = Math.max(1, opts.streamsPerTurn ?? 32)

  const detach = (res: ServerResponse) => {
    if (!streams.delete(res)) return
    if (streams.size > 0) return
    // Nobody listens: stop rendering.
    unsubscribe?.()
    unsubscribe = undefined
    if (flushTimer) clearTimeout(flushTimer)
    flushTimer = undefined
    if (keepalive) clearInterval(keepalive)
    keepalive = undefined
    due.clear()
    sends.length = 0 // a step already queued finds nothing and stops
  }

  const drop = (res: ServerResponse, reason: StreamDropReason) => {
    dropped[reason] += 1
    opts.logger.info({ reason, queued_bytes: res.writableLength, streams: streams.size - 1 }, 'event stream closed by pxebox; the client reconnects and reloads')
    detach(res)
    res.destroy()
  }

  // Broadcasts not yet written to every stream, oldest first: one runs at a time, so each stream gets them in order.
  const sends: { chunk: Buffer; targets: ServerResponse[]; next: number }[] = []
  let sending = false

  /** Writes the oldest broadcast to its next `streamsPerTurn` streams, then yields to the loop if any are left. */
  const step = () => {
    const send = sends[0]
    if (send === undefined) {
      sending = false
      return
    }
    const end = Math.min(send.next + streamsPerTurn, send.targets.length)
    for (; send.next < end; send.next++) {
      const res = send.targets[send.next] as ServerResponse
      if (!streams.has(res)) continue // closed since the broadcast began
      if (res.writableLength > opts.maxQueuedBytes) {
        drop(res, 'slow_reader')
        continue
      }
      try {
        res.write(send.chunk)
      } catch {
        drop(res, 'write_error')
      }
    }
    if (send.next >= send.targets.length) sends.shift()
    if (sends.length > 0) setImmediate(step)
    else sending = false
  }

  /**
   * Write one shared chunk to every stream that is keeping up; close the ones that are not. The text is encoded to
   * bytes once: written as a string, it was encoded again for each stream (a 30 KB batch to 350 streams is 10 MB of
   * UTF-8 encoding per batch), and streams that have not taken it yet all hold the same Buffer. The streams are written
   * `streamsPerTurn` per loop turn: one turn for all of them held the loop 10-30 ms per batch under bench/abuse, and a
   * DHCP offer due meanwhile waited.
   */
  const broadcast = (text: string) => {
    if (streams.size === 0) return
    sends.push({ chunk: Buffer.from(text), targets: [...streams], next: 0 })
    if (sending) return
    sending = true
    step()
  }

  const flush = () => {
    flushTimer = undefined
    if (due.size === 0) return
    batches += 1
    let text: string
    if (due.size > opts.maxBatchMachines) {
      resyncs += 1
      text = RESYNC_FRAME
    } else {
      text = ''
      for (const mac of due) text += opts.render(mac)
    }
    due.clear()
    broadcast(text)
  }

  const onChange = (mac: string) => {
    due.add(mac)
    flushTimer ??= setTimeout(flush, opts.coalesceMs)
  }

  return {
    attach(res) {
      if (streams.size >= opts.maxStreams) {
        refused += 1
        return false
      }
      streams.add(res)
      unsubscribe ??= opts.subscribe(onChange)
      keepalive ??= setInterval(() => broadcast(': keepalive\n\n'), opts.keepaliveMs)
      const end = () => detach(res)
      res.on('close', end)
      res.on('error', end)
      return true
    },
    stats() {
      let queuedBytes = 0
      for (const res of streams) queuedBytes += res.writableLength
      return { streams: streams.size, queuedBytes, refused, dropped: { ...dropped }, batches, resyncs }
    },
    close() {
      for (const res of [...streams]) {
        detach(res)
        res.end()
      }
    },
  }
}
