/**
 * Which IPv4 addresses pxebox has seen each MAC use on the PXE VLAN, for `bind_to_lease` profiles: their Ignition is
 * served only to a requester whose source address is one of those. The evidence is DHCP traffic only, never an HTTP
 * query's `mac=` label, which is whatever the requester claims: trusting it would let any host bind "its" lease to
 * itself. Until the address tracker (src/addresses/) feeds the same `AddressBook` interface, the daemon builds one from
 * boot events: a DHCP event with a MAC and a unicast source address is a machine using that address (iPXE's
 * ProxyDHCP REQUEST to port 4011 comes from the address the site server leased it, PXE spec 2.1 section 2.2.5).
 *
 * Limits, stated for the operator: in proxy mode pxebox does not see the site server's ACK unless the client asked
 * for a broadcast reply, so a machine is known here only once it talks to pxebox from its address (4011); and a host
 * on the VLAN that forges DHCP packets with another machine's chaddr from its own address is believed.
 */
import { isIPv4 } from '../host/ipv4.js'
import type { BootEvent, EventSink } from '../machines/events.js'

/** IPs pxebox has seen a MAC use; the interface the HTTP side and `bind_to_lease` depend on. */
export interface AddressBook {
  /** Addresses seen for `mac` (canonical lowercase colon form), most recent first; empty when none. */
  addressesOf(mac: string): readonly string[]
}

/** Options for observedAddresses. */
export interface ObservedAddressesOptions {
  /** MACs remembered; the least recently seen is forgotten first. Default 16,384. */
  maxMacs?: number
  /** Addresses kept per MAC (a machine moving between leases). Default 4. */
  maxPerMac?: number
  /** An address not seen again for this long no longer counts (a lease given to another machine). Default 24 h. */
  maxAgeMs?: number
  now?: () => number
}

/** `::ffff:10.0.0.5` (a dual-stack socket's view of an IPv4 peer) -> `10.0.0.5`; other text unchanged. */
export function plainIpv4(ip: string): string {
  return ip.toLowerCase().startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip
}

/** An address a machine can be said to use: IPv4, not 0.0.0.0 (no lease yet), broadcast, loopback or multicast. */
function usableAddress(ip: string): boolean {
  if (!isIPv4(ip)) return false
  const first = Number(ip.split('.')[0])
  return ip !== '0.0.0.0' && ip !== '255.255.255.255' && first !== 127 && first < 224
}

/** An AddressBook fed by boot events (use it as, or inside, the daemon's EventSink). */
export function observedAddresses(opts: ObservedAddressesOptions = {}): AddressBook & EventSink {
  const maxMacs = opts.maxMacs ?? 16_384
  const maxPerMac = opts.maxPerMac ?? 4
  const maxAgeMs = opts.maxAgeMs ?? 24 * 3600_000
  const now = opts.now ?? Date.now
  // mac -> ip -> last seen (ms); Map order is least recently seen first, for both levels.
  const byMac = new Map<string, Map<string, number>>()
  return {
    record(e: BootEvent) {
      if (e.kind !== 'dhcp' || e.mac === undefined || e.ip === undefined) return
      const ip = plainIpv4(e.ip)
      if (!usableAddress(ip)) return
      const ips = byMac.get(e.mac) ?? new Map<string, number>()
      byMac.delete(e.mac)
      byMac.set(e.mac, ips)
      ips.delete(ip)
      ips.set(ip, now())
      while (ips.size > maxPerMac) ips.delete(ips.keys().next().value!)
      while (byMac.size > maxMacs) byMac.delete(byMac.keys().next().value!)
    },
    addressesOf(mac) {
      const ips = byMac.get(mac)
      if (ips === undefined) return []
      const cutoff = now() - maxAgeMs
      return [...ips].filter(([, seen]) => seen >= cutoff).map(([ip]) => ip).reverse()
    },
  }
}

/** Why a request may not have a bound profile's config; undefined when it may. */
export function leaseBindingRefusal(addressesOf: AddressBook['addressesOf'], mac: string | undefined, requesterIp: string): string | undefined {
  if (mac === undefined) return 'this profile is bound to the lease (bind_to_lease) and the request names no mac'
  const ip = plainIpv4(requesterIp)
  const seen = addressesOf(mac)
  if (seen.includes(ip)) return undefined
  return seen.length === 0
    ? `this profile is bound to the lease (bind_to_lease): pxebox has seen no DHCP traffic from ${mac} carrying an address`
    : `this profile is bound to the lease (bind_to_lease): ${ip} is not an address pxebox has seen ${mac} use`
}
