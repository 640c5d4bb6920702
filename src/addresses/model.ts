/**
 * What the address tracker keeps and reports: bindings (MAC -> IP as seen on the PXE VLAN), machines (MACs grouped by
 * option 97 UUID) and findings (duplicate, stray, multi-NIC boot, rogue DHCP server) with their evidence.
 */

/** Where a binding was learnt: DHCP traffic, ARP, or both. */
export type BindingSource = 'dhcp' | 'arp' | 'both'

/**
 * The last DHCP state seen for a binding: a client's REQUEST (the ACK may have been unicast and invisible to us),
 * the server's ACK, or the client's RELEASE/DECLINE; 'arp' when only ARP ever showed it.
 */
export type BindingState = 'requested' | 'acked' | 'released' | 'declined' | 'arp'

/** One MAC -> IP binding. Times are ISO 8601. */
export interface Binding {
  mac: string
  ip: string
  /** The DHCP server that leased it (option 54), when seen. */
  server?: string
  firstSeen: string
  lastSeen: string
  hostname?: string
  /** Option 97 UUID (wire order, as the client sent it), when this MAC ever sent one. */
  uuid?: string
  source: BindingSource
  state: BindingState
  /** When the lease ends (from option 51 of an ACK we saw), if known. */
  leaseExpires?: string
  /** The machine this MAC belongs to: `uuid:<uuid>` when known, else `mac:<mac>`. */
  machine: string
}

/** One chassis: several NICs sharing an option 97 UUID, or a lone MAC. */
export interface Machine {
  id: string
  uuid?: string
  macs: string[]
}

/** The kinds of finding. */
export type FindingKind = 'duplicate' | 'stray' | 'multi-nic' | 'rogue-server' | 'next-server' | 'ipxe-not-run'

/** All finding kinds, for metrics with a zero for each. */
export const FINDING_KINDS: readonly FindingKind[] = ['duplicate', 'stray', 'multi-nic', 'rogue-server', 'next-server', 'ipxe-not-run']

/** One packet or probe that supports a finding. */
export interface Evidence {
  time: string
  /** `tftp`: a transfer pxebox served (boot-side findings). */
  source: 'dhcp' | 'arp' | 'probe' | 'tftp'
  mac?: string
  ip?: string
  /** What was seen, e.g. `REQUEST for 10.0.0.5 (server 10.0.0.1)` or `ARP reply 10.0.0.5 is-at aa:...`. */
  what: string
}

/** A problem the tracker sees on the VLAN. It stays listed while the condition lasts and clears when it ends. */
export interface Finding {
  /** Stable while the condition lasts: `duplicate:<ip>`, `stray:<mac>:<ip>`, `multi-nic:<uuid>`, `rogue-server:<ip>`,
   * `next-server:<mac>`, `ipxe-not-run:<mac>` (made by the boot side, src/boot/ipxe-handoff.ts). */
  id: string
  kind: FindingKind
  ip?: string
  macs: string[]
  uuid?: string
  server?: string
  /** When the tracker first reported it. */
  since: string
  /** One or two sentences an operator can act on. */
  explanation: string
  evidence: Evidence[]
}

/** One ARP frame as the capture saw it. */
export interface ArpObservation {
  time: number
  op: 'request' | 'reply'
  /** Ethernet source (the sender). */
  senderMac: string
  /** 0.0.0.0 for an RFC 5227 probe. */
  senderIp: string
  targetIp: string
}
