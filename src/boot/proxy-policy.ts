/**
 * The proxyDHCP policy (pxe-protocol.md "proxyDHCP"): a pure function from one decoded request, the port it came
 * in on and a context (our address, URLs, machine lookup, chainload memory) to a reply packet or "ignore" with a
 * reason. No sockets, no clocks: the DHCP service (dhcp-service.ts) wires it to the server.
 *
 * Which reply a client gets:
 * - BIOS PXE ROM (93 = 0): an offer with option 43 {6: 0x08, 10: {0, "PXE"}} so the ROM skips boot server
 *   discovery and takes the file from the offer (PXE spec 2.1 table 2-1, discovery control bit 3).
 * - UEFI PXE (93 = 6, 7, 9, 10, 11): a "BINL" offer without option 43 (some EDK2 builds drop proxy offers carrying
 *   43: tianocore/edk2#6944); the client then unicasts a REQUEST to 4011, answered with an ACK naming the file.
 * - UEFI HTTP boot (60 `HTTPClient`, 93 = 15, 16, 18, 19): an offer with an http:// URL to the EFI binary and option
 *   60 `HTTPClient` (UEFI spec 2.x section 24.7: the client only accepts offers that echo HTTPClient); no 4011 step.
 * - iPXE (option 77 `iPXE`): the HTTP script URL, so the chainload ends (otherwise it downloads iPXE again forever).
 *   With `chainloadIpxe`, an iPXE that has not just fetched pxebox's own binary over TFTP first gets that binary:
 *   this replaces an iPXE option ROM (old, unknown build and features) with pxebox's iPXE. The DHCP options alone
 *   cannot tell the two apart: the capture's QEMU ROM iPXE (frame 19) and the chainloaded snponly.efi (frame 8) send
 *   the same user class, bus id (0xb1) and version (0xeb = 1.0.0, what builds without a release tag report); their
 *   175 feature flags differ only by platform (0x24 EFI vs 0x21/0x22 PXE), which a BIOS undionly.kpxe shares with a
 *   BIOS ROM. Nothing in 175 says "I am a ROM" (Debian's undionly itself is not in the capture, so that last step
 *   is by iPXE's source, not by bytes). Hence the TFTP memory `chainloadedRecently(mac)`.
 * Ordinary DHCP clients (no PXEClient/HTTPClient in option 60), unknown architectures and machines whose group says
 * `pxe: false` are ignored.
 */
import {
  DhcpMessageType,
  DhcpOptionCode,
  PxeSubOption,
  clientArchitectures,
  clientUuid,
  encodeSubOptions,
  getOption,
  macAddress,
  messageType,
  pxeVendorOptions,
  textValue,
  u8Value,
  userClasses,
  vendorClass,
  parseIPv4,
  replyTo,
  type DhcpOption,
  type DhcpPacket,
} from '../dhcp/index.js'
import { archInfo, type ArchInfo, type ArchLabel } from './arch.js'
import { bootFileForArch } from './boot-files.js'
import type { Loader } from '../catalog/model-schema.js'

/** What pxebox's DHCP side needs to know about one machine (from its group; see config `groups[].pxe` etc.). */
export interface DhcpMachineSettings {
  /** false: pxebox's DHCP ignores this machine (another server boots it). */
  pxe: boolean
  /** Override of the first-stage file for UEFI clients, e.g. `snponly.efi`. */
  bootFile?: string
  /** Make an iPXE option ROM chainload pxebox's own iPXE over TFTP first. */
  chainloadIpxe: boolean
  /** First stage for x64 UEFI PXE (config `loader`); default ipxe. */
  loader?: Loader
  /** The matched group's id, for logs and events. */
  group?: string
}

/** The labels the DHCP side can offer the group matcher. `uuid` is option 97 in wire order (not normalized). */
export interface DhcpMachineLabels {
  mac: string
  uuid?: string
  arch: ArchLabel
}

/** Looks up a machine's DHCP settings; the integrator wires it to the group matcher. */
export type DhcpMachineLookup = (labels: DhcpMachineLabels) => DhcpMachineSettings

/** Everything the policy needs besides the request. */
export interface ProxyContext {
  /** Our address on the PXE interface, from config: option 54 and siaddr (TFTP server). Never guessed. */
  serverAddress: string
  /** Base URL of pxebox's HTTP server, e.g. `http://10.0.0.2:8080`; the iPXE script is `<base>/boot.ipxe`. */
  httpBaseUrl: string
  /** Base URL under which the firmware folder is served for UEFI HTTP boot; default `<httpBaseUrl>/firmware`. */
  firmwareBaseUrl?: string
  lookup: DhcpMachineLookup
  /** True when this MAC fetched a first-stage iPXE binary from our TFTP within the last few seconds. */
  chainloadedRecently: (mac: string) => boolean
}

/** The port a request came in on: 67 (DHCP) or 4011 (PXE boot server / proxyDHCP REQUEST). */
export type ProxyPort = 'dhcp' | 'pxe'

/** What kind of client the policy saw. */
export type ClientClass = 'pxe-bios' | 'pxe-efi' | 'http-boot' | 'ipxe'

/** Facts gathered while deciding, for logs and boot events (only what was found before the decision). */
export interface ProxyFacts {
  xid: number
  mac?: string
  messageType?: number
  vendorClass?: string
  arch?: number
  archLabel?: ArchLabel
  clientClass?: ClientClass
  group?: string
}

/** A reply to send; the server picks the destination (broadcast, relay or unicast back). */
export interface ProxyReply {
  action: 'reply'
  step: 'offer' | 'ack'
  reply: DhcpPacket
  /** The boot file or URL handed out. */
  bootFile: string
  /** How the client will fetch it. */
  via: 'tftp' | 'http'
  facts: ProxyFacts
}

/** No reply. `pxeClient` says whether the request came from a PXE/HTTP-boot client (worth an event) or not. */
export interface ProxyIgnore {
  action: 'ignore'
  reason: string
  pxeClient: boolean
  facts: ProxyFacts
}

/** The policy's verdict on one request. */
export type ProxyDecision = ProxyReply | ProxyIgnore

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '')
}

/** The iPXE script URL every iPXE client is sent to. */
export function ipxeScriptUrl(httpBaseUrl: string): string {
  return `${trimSlash(httpBaseUrl)}/boot.ipxe`
}

/** Option 93 from option 60 (`PXEClient:Arch:00007:...`) for clients that leave 93 out. */
function archFromVendorClass(vc: string): number | undefined {
  const m = /^(?:PXEClient|HTTPClient):Arch:(\d{5})/.exec(vc)
  return m === null ? undefined : Number(m[1])
}

/** The first architecture in the client's preference list that pxebox serves (RFC 4578 2.1 orders them). */
function pickArch(p: DhcpPacket, vc: string): { code?: number; info?: ArchInfo } {
  const list = clientArchitectures(p) ?? []
  if (list.length === 0) {
    const fromVc = archFromVendorClass(vc)
    if (fromVc !== undefined) list.push(fromVc)
  }
  for (const code of list) {
    const info = archInfo(code)
    if (info !== undefined) return { code, info }
  }
  return list.length > 0 ? { code: list[0] } : {}
}

/** Option 43 for a reply: the BIOS "boot from the offer's file" block, or the echoed 4011 boot item. */
function pxeOption43(request: DhcpPacket, port: ProxyPort): Buffer {
  const item = port === 'pxe' ? pxeVendorOptions(request)?.find((s) => s.code === PxeSubOption.BOOT_ITEM) : undefined
  // PXE spec 2.1 section 2.2.5: a boot server ACK echoes the requested boot item (type, layer).
  if (item !== undefined) return encodeSubOptions([item], { end: true })
  return encodeSubOptions(
    [
      // Bit 3: use the boot file in this offer, no boot server discovery, no menu.
      { code: PxeSubOption.DISCOVERY_CONTROL, data: u8Value(0x08) },
      // Menu prompt with timeout 0: some ROMs (Intel Boot Agent) want a prompt sub-option even without a menu.
      { code: PxeSubOption.MENU_PROMPT, data: Buffer.from([0, ...Buffer.from('PXE', 'latin1')]) },
    ],
    { end: true },
  )
}

function ignore(reason: string, pxeClient: boolean, facts: ProxyFacts): ProxyIgnore {
  return { action: 'ignore', reason, pxeClient, facts }
}

/**
 * The PXE part of an answer, shared by proxy replies and the authoritative server's offers (which add an address and
 * lease options around it): which boot file, how it is fetched, and the options that carry it.
 */
export interface PxeBoot {
  action: 'boot'
  /** The boot file or URL handed out. */
  bootFile: string
  /** How the client will fetch it. */
  via: 'tftp' | 'http'
  /** Option 60 (PXEClient/HTTPClient), 97 echoed, 43 for BIOS ROMs, 67: in this order, after 53 and 54. */
  options: DhcpOption[]
  /** siaddr: the TFTP server (us). */
  siaddr: string
  /** The `file` field: the boot file when it fits the 128-byte C string, else '' (option 67 carries it). */
  file: string
  facts: ProxyFacts
}

/**
 * Decides the PXE boot answer for a PXE or HTTP-boot client, whatever the DHCP message type; `port` only matters for
 * option 43 (a 4011 ACK echoes the requested boot item). Ordinary DHCP clients and machines with `pxe: false` get
 * an ignore.
 */
export function decidePxeBoot(request: DhcpPacket, port: ProxyPort, ctx: ProxyContext, facts: ProxyFacts = { xid: request.xid }): PxeBoot | ProxyIgnore {
  const vc = vendorClass(request) ?? ''
  facts.vendorClass = vc
  const httpClient = vc.startsWith('HTTPClient')
  if (!httpClient && !vc.startsWith('PXEClient')) return ignore('not a PXE client (option 60)', false, facts)
  const mac = macAddress(request)
  if (mac === undefined) return ignore(`chaddr is not an Ethernet MAC (htype ${request.htype}, hlen ${request.hlen})`, true, facts)
  facts.mac = mac

  const { code, info } = pickArch(request, vc)
  if (code !== undefined) facts.arch = code
  if (info === undefined) return ignore(`unknown client architecture ${code ?? '(no option 93)'}`, true, facts)
  facts.archLabel = info.label
  if (httpClient !== (info.firmware === 'efi-http')) {
    return ignore(`option 60 ${vc.split(':')[0]} does not fit architecture ${info.code} (${info.name})`, true, facts)
  }
  const uuid = clientUuid(request)?.uuid
  const settings = ctx.lookup(uuid === undefined ? { mac, arch: info.label } : { mac, uuid, arch: info.label })
  if (settings.group !== undefined) facts.group = settings.group
  if (!settings.pxe) return ignore(`pxe disabled for this machine (group ${settings.group ?? 'none'})`, true, facts)

  const isIpxe = userClasses(request)?.includes('iPXE') === true
  const needsChainload = isIpxe && settings.chainloadIpxe && !ctx.chainloadedRecently(mac)
  let clientClass: ClientClass
  let bootFile: string
  let via: 'tftp' | 'http'
  if (isIpxe && !needsChainload) {
    clientClass = 'ipxe'
    bootFile = ipxeScriptUrl(ctx.httpBaseUrl)
    via = 'http'
  } else {
    clientClass = isIpxe ? 'ipxe' : info.firmware === 'bios' ? 'pxe-bios' : info.firmware === 'efi' ? 'pxe-efi' : 'http-boot'
    const file = bootFileForArch(info.code, settings.bootFile, settings.loader) as string
    if (info.firmware === 'efi-http') {
      bootFile = `${trimSlash(ctx.firmwareBaseUrl ?? `${trimSlash(ctx.httpBaseUrl)}/firmware`)}/${file}`
      via = 'http'
    } else if (needsChainload) {
      // `<mac>/file` maps to the same file on our TFTP server and tells it which machine fetched it, which is what
      // chainloadedRecently() remembers (boot/chainload.ts): the loop breaker needs the MAC, TFTP only sees an IP.
      bootFile = `${mac.replace(/:/g, '-')}/${file}`
      via = 'tftp'
    } else {
      bootFile = file
      via = 'tftp'
    }
  }
  facts.clientClass = clientClass

  const options: DhcpOption[] = [{ code: DhcpOptionCode.VENDOR_CLASS, data: textValue(httpClient ? 'HTTPClient' : 'PXEClient') }]
  const uuidOption = getOption(request.options, DhcpOptionCode.CLIENT_UUID)
  if (uuidOption !== undefined) options.push({ code: DhcpOptionCode.CLIENT_UUID, data: uuidOption })
  if (info.firmware === 'bios') options.push({ code: DhcpOptionCode.VENDOR_SPECIFIC, data: pxeOption43(request, port) })
  options.push({ code: DhcpOptionCode.BOOTFILE, data: textValue(bootFile) })
  return {
    action: 'boot',
    bootFile,
    via,
    options,
    siaddr: ctx.serverAddress,
    // The file field is a 128-byte C string; longer URLs travel in option 67 only.
    file: Buffer.byteLength(bootFile, 'latin1') <= 127 ? bootFile : '',
    facts,
  }
}

/** Decides what (if anything) pxebox answers to `request`, which arrived on `port`. */
export function decideProxyReply(request: DhcpPacket, port: ProxyPort, ctx: ProxyContext): ProxyDecision {
  const facts: ProxyFacts = { xid: request.xid }
  if (request.op !== 1) return ignore('not a BOOTREQUEST', false, facts)
  const type = messageType(request)
  if (type !== undefined) facts.messageType = type
  const wanted = port === 'dhcp' ? DhcpMessageType.DISCOVER : DhcpMessageType.REQUEST
  if (type !== wanted) {
    // A REQUEST on 67 is the client taking the site server's lease; a proxy has nothing to add there.
    return ignore(`DHCP message type ${type ?? 'none'} on port ${port === 'dhcp' ? 67 : 4011} is not for a proxy`, false, facts)
  }
  const boot = decidePxeBoot(request, port, ctx, facts)
  if (boot.action === 'ignore') return boot

  const options: DhcpOption[] = [
    { code: DhcpOptionCode.MESSAGE_TYPE, data: u8Value(port === 'dhcp' ? DhcpMessageType.OFFER : DhcpMessageType.ACK) },
    { code: DhcpOptionCode.SERVER_ID, data: parseIPv4(ctx.serverAddress) },
    ...boot.options,
  ]
  const reply = replyTo(request, {
    ciaddr: request.ciaddr,
    // yiaddr stays 0.0.0.0: that is what makes this a proxy offer, no address is offered.
    siaddr: boot.siaddr,
    file: boot.file,
    options,
  })
  return { action: 'reply', step: port === 'dhcp' ? 'offer' : 'ack', reply, bootFile: boot.bootFile, via: boot.via, facts }
}
