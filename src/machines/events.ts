/**
 * Boot events: what the DHCP, TFTP and HTTP services saw a machine do.
 *
 * Protocol servers never know about machines; the PXE layer turns what they did into events and hands them to an
 * EventSink. The operator's view (machine timeline) and the address tracker consume them later.
 */
export type BootEventKind =
  | 'dhcp' // a DHCP/proxyDHCP request and the decision taken
  | 'tftp' // a TFTP transfer finished (or failed)
  | 'http' // an HTTP boot endpoint was hit (boot.ipxe, ipxe, ignition, asset, ...)

export interface BootEvent {
  /** ISO 8601 time the event happened. */
  time: string
  kind: BootEventKind
  /**
   * Canonical lowercase colon MAC when known. Only a `dhcp` event's MAC comes off the wire (the chaddr of a packet
   * pxebox received); an `http` event's is the request's `mac=` query label and a `tftp` event's a `<mac>/` path
   * prefix, both whatever the requester claims. Anything that grants trust (bind_to_lease, the tokenless installed
   * callback) must take identity from DHCP events or the address tracker, never from the other kinds (issue 13).
   */
  mac?: string
  /** The peer's IP address when known. */
  ip?: string
  /** A short machine-readable step: 'offer', 'ack', 'ignore', 'file', 'script', 'kernel', 'initrd', 'ignition', ... */
  step: string
  /** 'ok' or a short failure reason. */
  outcome: string
  /** Everything else worth showing (file, bytes, arch, client class, duration_ms, ...). */
  detail: Record<string, unknown>
}

/** Where services put their events. Implementations must not throw. */
export interface EventSink {
  record(event: BootEvent): void
}

/** An EventSink that keeps nothing: the default for library use and tests that do not care. */
export const discardEvents: EventSink = { record() {} }

/** An EventSink that keeps the last `limit` events in memory, newest last. */
export function memoryEvents(limit = 10_000): EventSink & { events: BootEvent[] } {
  const events: BootEvent[] = []
  return {
    events,
    record(event) {
      events.push(event)
      if (events.length > limit) events.splice(0, events.length - limit)
    },
  }
}
