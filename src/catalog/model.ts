/**
 * The boot model after loading: profiles and groups with every value checked and normalized, each remembering the
 * file (or config.yaml entry) it came from so errors can name it. Built from config.yaml objects or Matchbox files.
 */
import type { GroupInput, Loader, MatchboxGroupFile, MatchboxProfileFile, ProfileInput, SelectorValue } from './model-schema.js'
import { normalizeMac, normalizeUuid } from './labels.js'
import { planBoot, type BootPlan } from './boot-plan.js'
import type { Checked } from './checked.js'

/** What a machine boots and is provisioned with. */
export interface Profile {
  readonly id: string
  readonly name?: string
  /** The checked iPXE boot plan; absent for profiles that only serve Ignition/generic (Flatcar's installed stage). */
  readonly boot?: BootPlan
  /** Ignition template file name (under the ignition directory). */
  readonly ignition?: string
  /** Generic template file name (under the generic directory). */
  readonly generic?: string
  /** Serve Ignition/generic/metadata only to the IP pxebox has seen the requesting MAC use (config `bind_to_lease`). */
  readonly bindToLease: boolean
  /** Install once (config `boot_once`): after the machine's installed callback, `/ipxe` boots the local disk. */
  readonly bootOnce: boolean
  /** Default first stage for UEFI x86-64 of the groups using this profile (config `loader`). */
  readonly loader?: Loader
  /** Where it was defined: `config.yaml profiles.x` or a file path. */
  readonly source: string
}

/** Which machines get which profile. */
export interface Group {
  readonly id: string
  readonly name?: string
  readonly profile: string
  /** Lowercase label name -> accepted canonical values (one or more). Empty: the default group. */
  readonly selector: Readonly<Record<string, readonly string[]>>
  readonly metadata: Readonly<Record<string, unknown>>
  /** pxebox extras for the DHCP side. */
  readonly pxe: boolean
  readonly bootFile?: string
  readonly chainloadIpxe: boolean
  /** First stage for UEFI x86-64 (config `loader`); undefined: the profile's. */
  readonly loader?: Loader
  readonly source: string
}

/** The first stage a group's UEFI x86-64 machines get: the group's `loader`, else its profile's, else iPXE. */
export function effectiveLoader(group: Group, profile: Profile | undefined): Loader {
  return group.loader ?? profile?.loader ?? 'ipxe'
}

/** One selector value in canonical form (mac, uuid), or undefined after pushing its error. */
function normalizeValue(key: string, value: string, errors: string[]): string | undefined {
  if (key === 'mac') {
    const mac = normalizeMac(value)
    if (mac === undefined) errors.push(`selector mac "${value}" is not a MAC address (use 52:54:00:12:34:56)`)
    return mac
  }
  if (key === 'uuid') {
    const uuid = normalizeUuid(value)
    if (uuid === undefined) errors.push(`selector uuid "${value}" is not a UUID (use 8-4-4-4-12 hex)`)
    return uuid
  }
  return value
}

/**
 * Normalize a selector: lowercase names (two spellings of one name are an error), canonical mac/uuid values,
 * lists deduplicated. Errors name the key and the bad value.
 */
export function normalizeSelector(selector: Record<string, SelectorValue> | undefined): Checked<Record<string, string[]>> {
  const out: Record<string, string[]> = {}
  const errors: string[] = []
  // for...in and no Set for a one-value label (one MAC per group): Object.entries' pairs and a Set per group were a
  // tenth of the garbage of a 100,000-group load (issue 16).
  for (const rawKey in selector) {
    const rawValue = selector[rawKey]!
    const key = rawKey.toLowerCase()
    if (key in out) {
      errors.push(`selector names "${key}" twice (label names are case-insensitive)`)
      continue
    }
    if (!Array.isArray(rawValue)) {
      const one = normalizeValue(key, rawValue, errors)
      out[key] = one === undefined ? [] : [one]
      continue
    }
    const values = new Set<string>()
    for (const value of rawValue) {
      const v = normalizeValue(key, value, errors)
      if (v !== undefined) values.add(v)
    }
    out[key] = [...values]
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, value: out }
}

function prefixed(source: string, errors: string[]): string[] {
  return errors.map((e) => `${source}: ${e}`)
}

/** A config.yaml group (already schema-valid) -> Group. */
export function groupFromConfig(input: GroupInput, source: string): Checked<Group> {
  return buildGroup(input, source)
}

/** A Matchbox `groups/*.json` file (already schema-valid) -> Group. */
export function groupFromMatchbox(file: MatchboxGroupFile, source: string): Checked<Group> {
  return buildGroup(file, source)
}

function buildGroup(input: GroupInput | MatchboxGroupFile, source: string): Checked<Group> {
  const selector = normalizeSelector(input.selector)
  if (!selector.ok) return { ok: false, errors: prefixed(source, selector.errors) }
  return {
    ok: true,
    value: {
      id: input.id,
      ...(input.name !== undefined ? { name: input.name } : {}),
      profile: input.profile,
      selector: selector.value,
      metadata: input.metadata ?? {},
      pxe: input.pxe ?? true,
      ...(input.boot_file !== undefined ? { bootFile: input.boot_file } : {}),
      chainloadIpxe: input.chainload_ipxe ?? false,
      ...(input.loader !== undefined ? { loader: input.loader } : {}),
      source,
    },
  }
}

/** A config.yaml profile (already schema-valid) under map key `id` -> Profile. */
export function profileFromConfig(id: string, input: ProfileInput, source: string): Checked<Profile> {
  if (input.id !== undefined && input.id !== id) {
    return { ok: false, errors: [`${source}: id "${input.id}" differs from its key "${id}"`] }
  }
  return buildProfile(id, input.name, input.boot, input.ignition, input.generic, input.bind_to_lease ?? false, source, input.boot_once ?? false, input.loader)
}

/**
 * A Matchbox `profiles/*.json` file -> Profile. Matchbox treats a profile whose boot has no kernel as having no
 * network boot; so does pxebox (its `/ipxe` answers 404 naming the profile).
 */
export function profileFromMatchbox(file: MatchboxProfileFile, source: string): Checked<Profile> {
  const boot = file.boot?.kernel ? { kernel: file.boot.kernel, initrd: file.boot.initrd, args: file.boot.args } : undefined
  const ignition = file.ignition_id === '' ? undefined : file.ignition_id
  const generic = file.generic_id === '' ? undefined : file.generic_id
  return buildProfile(file.id, file.name, boot, ignition, generic, file.bind_to_lease ?? false, source, file.boot_once ?? false, file.loader)
}

const SAFE_TEMPLATE_NAME = /^[A-Za-z0-9_@:-][A-Za-z0-9._@:-]*$/

function buildProfile(
  id: string,
  name: string | undefined,
  boot: { kernel: string; initrd?: string[] | undefined; args?: string[] | undefined } | undefined,
  ignition: string | undefined,
  generic: string | undefined,
  bindToLease: boolean,
  source: string,
  bootOnce: boolean,
  loader: Loader | undefined,
): Checked<Profile> {
  const errors: string[] = []
  let plan: BootPlan | undefined
  if (boot !== undefined) {
    const planned = planBoot(boot.kernel, boot.initrd ?? [], boot.args ?? [])
    if (planned.ok) plan = planned.value
    else errors.push(...planned.errors)
  }
  for (const [what, file] of [['ignition', ignition], ['generic', generic]] as const) {
    if (file !== undefined && !SAFE_TEMPLATE_NAME.test(file)) errors.push(`${what} "${file}" must be a plain file name`)
  }
  if (errors.length > 0) return { ok: false, errors: prefixed(source, errors) }
  return {
    ok: true,
    value: {
      id,
      ...(name !== undefined ? { name } : {}),
      ...(plan !== undefined ? { boot: plan } : {}),
      ...(ignition !== undefined ? { ignition } : {}),
      ...(generic !== undefined ? { generic } : {}),
      bindToLease,
      bootOnce,
      ...(loader !== undefined ? { loader } : {}),
      source,
    },
  }
}
