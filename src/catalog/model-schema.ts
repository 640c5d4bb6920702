/**
 * The boot model as schemas: profiles (what a machine boots) and groups (which machines get which profile).
 *
 * Two shapes are described here. `ProfileSchema`/`GroupSchema` are pxebox's own, used for the `profiles:` map and
 * `groups:` list of config.yaml. `MatchboxProfileFileSchema`/`MatchboxGroupFileSchema` are the JSON files of a
 * Matchbox data directory (`profiles/*.json`, `groups/*.json`), taken from Matchbox's storagepb `Profile`/`RichGroup`
 * JSON encoding, so an existing `/var/lib/matchbox` loads unchanged. All forbid unknown keys: Matchbox silently
 * ignores a misspelt `selectors`, which matches every machine; pxebox refuses to load it instead.
 */
import { Type, type Static } from '@sinclair/typebox'

/** A selector value: one string, or (pxebox extension) a non-empty list meaning "any of these". */
export const SelectorValueSchema = Type.Union([
  Type.String({ minLength: 1 }),
  Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
])

/** Label name -> required value(s). Keys are compared case-insensitively (`MAC` and `mac` are one label). */
export const SelectorSchema = Type.Record(Type.String({ minLength: 1 }), SelectorValueSchema)

/** Free-form group metadata, handed to templates and to `/metadata`. */
export const MetadataSchema = Type.Record(Type.String(), Type.Unknown())

/** Network boot settings, as Matchbox's `NetBoot`: a kernel URL, initrd URLs (iPXE `initrd` arguments), kernel args. */
export const BootSchema = Type.Object(
  {
    kernel: Type.String({ minLength: 1 }),
    initrd: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    args: Type.Optional(Type.Array(Type.String())),
  },
  { additionalProperties: false },
)

/** Ids appear in file names and URLs: keep them to a safe alphabet. */
const IdSchema = Type.String({ minLength: 1, maxLength: 200, pattern: '^[A-Za-z0-9._@:-]+$' })

/** A file name under the ignition/ or generic/ directory: no directories, no dot-files. */
const TemplateNameSchema = Type.String({ minLength: 1, maxLength: 255, pattern: '^[A-Za-z0-9_@:-][A-Za-z0-9._@:-]*$' })

/**
 * pxebox extension: serve this profile's `/ignition`, `/generic` and `/metadata` only to the IP address pxebox has
 * seen the requesting MAC use on the PXE VLAN (its DHCP traffic), so an Ignition file carrying secrets is not handed
 * to any host that merely knows or guesses a MAC. Default false.
 */
const BindToLeaseSchema = Type.Boolean({
  description: "serve this profile's Ignition/generic/metadata only to the IP pxebox has seen the machine's MAC use on the PXE VLAN",
})

/**
 * pxebox extension: install once. After the machine calls `/v1/machines/<mac>/installed`, `/ipxe` answers with a
 * local-disk boot instead of this profile's installer until an operator re-arms it, so a reinstall loop cannot happen
 * whatever the boot order. Default false.
 */
const BootOnceSchema = Type.Boolean({
  description: 'after the machine reports installed (/v1/machines/<mac>/installed), /ipxe boots the local disk until re-armed',
})

/**
 * pxebox extension: the first stage UEFI x86-64 machines get over PXE. `ipxe` (default): pxebox's iPXE, unsigned, so
 * firmware with Secure Boot on refuses it. `shim-grub`: the Microsoft-signed shim, which loads Debian's signed network
 * GRUB, which boots the profile's kernel and initrds over TFTP from a config pxebox generates (issue 19). On a profile
 * it is the default for the groups using it; a group's own value wins.
 */
export const LoaderSchema = Type.Union([Type.Literal('ipxe'), Type.Literal('shim-grub')], {
  description: 'first stage for UEFI x86-64 PXE: ipxe (default) or shim-grub (signed shim + GRUB, for Secure Boot)',
})

/**
 * A profile in config.yaml (`profiles: {<id>: <profile>}`). `id`, when given, must equal the map key.
 * A profile without `boot` is valid: Flatcar's installed-stage profile only serves Ignition.
 */
export const ProfileSchema = Type.Object(
  {
    id: Type.Optional(IdSchema),
    name: Type.Optional(Type.String()),
    boot: Type.Optional(BootSchema),
    ignition: Type.Optional(TemplateNameSchema),
    generic: Type.Optional(TemplateNameSchema),
    bind_to_lease: Type.Optional(BindToLeaseSchema),
    boot_once: Type.Optional(BootOnceSchema),
    loader: Type.Optional(LoaderSchema),
  },
  { additionalProperties: false },
)

/** A group in config.yaml (`groups: [...]`), with pxebox's DHCP-side extras. */
export const GroupSchema = Type.Object(
  {
    id: IdSchema,
    name: Type.Optional(Type.String()),
    profile: IdSchema,
    selector: Type.Optional(SelectorSchema),
    metadata: Type.Optional(MetadataSchema),
    /** false: pxebox's DHCP side ignores machines of this group. Default true. */
    pxe: Type.Optional(Type.Boolean()),
    /** Override of the first-stage boot file for UEFI PXE (e.g. ipxe.efi for its native NIC drivers, instead of the default snponly.efi). */
    boot_file: Type.Optional(Type.String({ minLength: 1, maxLength: 127 })),
    /** true: an iPXE option ROM is first made to chainload pxebox's own iPXE build over TFTP. Default false. */
    chainload_ipxe: Type.Optional(Type.Boolean()),
    /** First stage for UEFI x86-64 PXE; default: the profile's `loader`, else ipxe. */
    loader: Type.Optional(LoaderSchema),
  },
  { additionalProperties: false },
)

/** `profiles/<id>.json` in a Matchbox data directory (storagepb.Profile JSON). `cloud_id` is accepted and ignored. */
export const MatchboxProfileFileSchema = Type.Object(
  {
    id: IdSchema,
    name: Type.Optional(Type.String()),
    boot: Type.Optional(
      Type.Object(
        {
          kernel: Type.Optional(Type.String()),
          initrd: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
          args: Type.Optional(Type.Array(Type.String())),
        },
        { additionalProperties: false },
      ),
    ),
    ignition_id: Type.Optional(Type.String()),
    generic_id: Type.Optional(Type.String()),
    cloud_id: Type.Optional(Type.String()),
    /** pxebox extension (Matchbox has no such field); see BindToLeaseSchema. */
    bind_to_lease: Type.Optional(BindToLeaseSchema),
    /** pxebox extension; see BootOnceSchema. */
    boot_once: Type.Optional(BootOnceSchema),
    /** pxebox extension; see LoaderSchema. */
    loader: Type.Optional(LoaderSchema),
  },
  { additionalProperties: false },
)

/**
 * `groups/<id>.json` in a Matchbox data directory (storagepb.RichGroup JSON): the same shape as a config.yaml group
 * (Matchbox's fields are pxebox's, and pxebox's DHCP extras are accepted there too).
 */
export const MatchboxGroupFileSchema = GroupSchema

/** A profile as written in config.yaml. */
export type ProfileInput = Static<typeof ProfileSchema>
/** A group as written in config.yaml. */
export type GroupInput = Static<typeof GroupSchema>
/** A Matchbox `profiles/*.json` file. */
export type MatchboxProfileFile = Static<typeof MatchboxProfileFileSchema>
/** A Matchbox `groups/*.json` file. */
export type MatchboxGroupFile = Static<typeof MatchboxGroupFileSchema>
/** `loader` values: the UEFI x86-64 first stage. */
export type Loader = Static<typeof LoaderSchema>
/** One selector value as written (string or list). */
export type SelectorValue = Static<typeof SelectorValueSchema>
