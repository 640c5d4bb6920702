/**
 * GRUB configs as TFTP files (issue 19): what pxebox answers the Secure Boot chain's GRUB for each config name it
 * asks for. `grub/grub.cfg` is the static bootstrap (grub-config.ts); every per-machine name (grub-config-names.ts)
 * is matched to a machine, then to its group and profile, and answered with that machine's boot config, its
 * local-boot config (install once: reported installed) or a message config saying why there is no boot. A config
 * name never gets a TFTP error: GRUB would print "file not found" and drop to its prompt, where the operator learns
 * nothing, and pxebox's message says what to fix.
 */
import { normalizeLabels, normalizeUuid } from '../catalog/labels.js'
import type { BootState } from '../catalog/state.js'
import type { MachineRecord } from '../machines/model.js'
import { grubConfigIdentity, ipMatchesGrubHex, type GrubConfigIdentity } from './grub-config-names.js'
import { grubBootstrapConfig, renderGrubBootConfig, renderGrubLocalBootConfig, renderGrubMessageConfig, type GrubMachine } from './grub-config.js'

/** What the GRUB config answers need from the rest of pxebox. */
export interface GrubFilesOptions {
  /** The current boot catalog. */
  readonly catalog: () => BootState
  /** Machine records, for install-once state and for the UUID and address a machine was seen with. */
  readonly machines: { get(mac: string): MachineRecord | undefined; list(): readonly MachineRecord[] }
  /** The MAC the address tracker or pxebox's own DHCP saw using an address (its lease), if any. */
  readonly macForIp: (ip: string) => string | undefined
  /** pxebox's public HTTP URL (absolute asset URLs on it map to TFTP like root-relative ones). */
  readonly publicUrl: string
  /** pxebox's TFTP address, written into kernel and initrd paths (see GrubTarget). */
  readonly server?: string
}

/** A generated config: its text and the machine it was made for (the TFTP transfer is attributed to it). */
export interface GrubConfigFile {
  readonly content: Buffer
  readonly mac?: string
  /** What was answered, for the log: 'bootstrap', 'boot', 'local-boot' or 'message'. */
  readonly answer: 'bootstrap' | 'boot' | 'local-boot' | 'message'
}

/**
 * The machine a config name identifies. A MAC names it; a UUID is looked up among the records; an IP name (or a UUID
 * no record carries) is taken as the asking machine itself when the requesting address fits it (GRUB asks for its own
 * names), and that address is resolved to a MAC through the lease pxebox or the tracker saw.
 */
function machineFor(identity: Exclude<GrubConfigIdentity, { kind: 'default' }>, peer: string, opts: GrubFilesOptions): string | undefined {
  if (identity.kind === 'mac') return identity.mac
  if (identity.kind === 'uuid') {
    const known = opts.machines.list().find((r) => r.uuid !== undefined && normalizeUuid(r.uuid) === identity.uuid)
    if (known !== undefined) return known.mac
    return macAt(peer, opts)
  }
  return ipMatchesGrubHex(peer, identity) ? macAt(peer, opts) : undefined
}

/**
 * The MAC using `ip`: the lease the tracker saw, else the record whose latest address it is (pxebox's own
 * authoritative ACKs land there). Choosing which config to send grants nothing a MAC-named config name does not.
 */
function macAt(ip: string, opts: GrubFilesOptions): string | undefined {
  return opts.macForIp(ip) ?? opts.machines.list().find((r) => r.ips[0] === ip)?.mac
}

/** The config for one known MAC: boot, local boot or a message naming the reason. */
function configFor(mac: string, peer: string, opts: GrubFilesOptions): GrubConfigFile {
  const record = opts.machines.get(mac)
  const uuid = record?.uuid !== undefined ? normalizeUuid(record.uuid) : undefined
  // shim-grub serves x64 UEFI only (boot-files.ts), so the arch label is known.
  const labels = normalizeLabels({ mac, arch: 'x86_64', ...(uuid !== undefined ? { uuid } : {}), ...(record?.hostname !== undefined ? { hostname: record.hostname } : {}), ...(record?.serial !== undefined ? { serial: record.serial } : {}) })
  const message = (lines: string[]): GrubConfigFile => ({ content: Buffer.from(renderGrubMessageConfig(lines)), mac, answer: 'message' })
  const match = opts.catalog().match(labels)
  if (match === undefined) return message([`no group matches ${mac} (arch x86_64${uuid !== undefined ? `, uuid ${uuid}` : ''}); add a group or a default group`])
  const { group, profile } = match
  if (profile.boot === undefined) return message([`group "${group.id}": profile "${profile.id}" has no kernel to boot`])
  if (profile.bootOnce && record?.installed_at !== undefined) {
    return { content: Buffer.from(renderGrubLocalBootConfig(mac, profile.id, record.installed_at)), mac, answer: 'local-boot' }
  }
  const machine: GrubMachine = {
    mac,
    ...(uuid !== undefined ? { uuid } : {}),
    ...(record?.serial !== undefined ? { serial: record.serial } : {}),
    ...(record?.hostname !== undefined ? { hostname: record.hostname } : {}),
    ...(/^\d+\.\d+\.\d+\.\d+$/.test(peer) && peer !== '0.0.0.0' ? { ip: peer } : {}),
  }
  const rendered = renderGrubBootConfig(profile.boot, machine, { publicUrl: opts.publicUrl, ...(opts.server !== undefined ? { server: opts.server } : {}) }, `group "${group.id}", profile "${profile.id}"`)
  // The load-time trial render (grub-check.ts) catches what it can; a value only this machine has may still fail.
  if (!rendered.ok) return message([`group "${group.id}", profile "${profile.id}" cannot boot under GRUB:`, ...rendered.errors])
  return { content: Buffer.from(rendered.value), mac, answer: 'boot' }
}

/**
 * The answer to a TFTP path (relative, normalized) when it is a GRUB config name, else undefined so other files are
 * looked up. `peer` is the requesting address.
 */
export function grubConfigFile(path: string, peer: string, opts: GrubFilesOptions): GrubConfigFile | undefined {
  const identity = grubConfigIdentity(path)
  if (identity === undefined) return undefined
  if (identity.kind === 'default') return { content: Buffer.from(grubBootstrapConfig()), answer: 'bootstrap', ...macOf(macAt(peer, opts)) }
  const mac = machineFor(identity, peer, opts)
  if (mac === undefined) {
    return {
      content: Buffer.from(renderGrubMessageConfig([`no machine known for config ${path} (asked from ${peer}); GRUB's own MAC name grub.cfg-01-<mac> is served`])),
      answer: 'message',
    }
  }
  return configFor(mac, peer, opts)
}

function macOf(mac: string | undefined): { mac?: string } {
  return mac === undefined ? {} : { mac }
}

/** Shim's optional files (see isOptionalLoaderFile). */
const OPTIONAL_SHIM_FILES = /^(mmx64|fbx64|revocations(_[a-z0-9]+)?|shim_certificate_\d+)\.efi$/

/**
 * Files of the signed chain's loaders that shim and GRUB probe for and that pxebox does not have: a miss is normal,
 * so it is logged quietly rather than as a failed transfer. Shim asks for its MOK manager and fallback
 * (`mmx64.efi`, `fbx64.efi`), revocation lists and extra certificates (`revocations.efi`; Debian's shim 16.1 asks for
 * `revocations_sku.efi`, `revocations_sbat.efi` and `shim_certificate_0.efi`, measured in the e2e test); GRUB 2.06's
 * `search`/`configfile` probe for command lists (`*.lst`: command.lst, fs.lst, crypto.lst, terminal.lst) under its
 * prefix.
 */
export function isOptionalLoaderFile(path: string): boolean {
  const base = path.slice(path.lastIndexOf('/') + 1).toLowerCase()
  return OPTIONAL_SHIM_FILES.test(base) || (path.toLowerCase().startsWith('grub/') && base.endsWith('.lst'))
}
