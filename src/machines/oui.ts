/**
 * NIC vendor from a MAC's OUI (its first three bytes), for the machine list: "QEMU", "Mellanox", "Intel" tells an
 * operator which port of a multi-NIC server is booting. A small table of vendors common in server rooms and VMs,
 * shipped as data (the IEEE registry is 5 MB and changes monthly; pxebox downloads nothing). Unknown OUIs answer
 * undefined; locally administered addresses (bit 1 of the first byte, IEEE 802 section 8.2) are said to be so.
 */

/** OUI (lowercase `aa:bb:cc`) -> vendor, from the IEEE MA-L registry. Extend freely: one line per OUI. */
export const OUI_VENDORS: Readonly<Record<string, string>> = {
  // Hypervisors: virtual NICs
  '52:54:00': 'QEMU/KVM',
  '08:00:27': 'VirtualBox',
  '00:50:56': 'VMware',
  '00:0c:29': 'VMware',
  '00:05:69': 'VMware',
  '00:16:3e': 'Xen',
  '00:15:5d': 'Hyper-V',
  // Intel
  '00:02:b3': 'Intel',
  '00:15:17': 'Intel',
  '00:1b:21': 'Intel',
  '00:1e:67': 'Intel',
  '3c:fd:fe': 'Intel',
  '40:a6:b7': 'Intel',
  '68:05:ca': 'Intel',
  '90:e2:ba': 'Intel',
  'a0:36:9f': 'Intel',
  'b4:96:91': 'Intel',
  // Broadcom
  '00:10:18': 'Broadcom',
  '00:0a:f7': 'Broadcom',
  // Mellanox (NVIDIA)
  '00:02:c9': 'Mellanox/NVIDIA',
  '0c:42:a1': 'Mellanox/NVIDIA',
  '1c:34:da': 'Mellanox/NVIDIA',
  '24:8a:07': 'Mellanox/NVIDIA',
  '50:6b:4b': 'Mellanox/NVIDIA',
  '7c:fe:90': 'Mellanox/NVIDIA',
  '98:03:9b': 'Mellanox/NVIDIA',
  'b8:59:9f': 'Mellanox/NVIDIA',
  'b8:ce:f6': 'Mellanox/NVIDIA',
  'ec:0d:9a': 'Mellanox/NVIDIA',
  // Other server NICs
  '00:07:43': 'Chelsio',
  '00:0f:53': 'Solarflare',
  '00:0e:1e': 'QLogic',
  '00:c0:dd': 'QLogic',
  '00:00:c9': 'Emulex',
  '00:17:b6': 'Aquantia',
  '00:e0:4c': 'Realtek',
  // Server vendors (onboard NICs and BMCs)
  '00:25:90': 'Supermicro',
  '00:30:48': 'Supermicro',
  '0c:c4:7a': 'Supermicro',
  '3c:ec:ef': 'Supermicro',
  'ac:1f:6b': 'Supermicro',
  '00:14:22': 'Dell',
  '00:1e:c9': 'Dell',
  '00:21:9b': 'Dell',
  '14:18:77': 'Dell',
  '18:66:da': 'Dell',
  '24:6e:96': 'Dell',
  '54:9f:35': 'Dell',
  '84:7b:eb': 'Dell',
  '90:b1:1c': 'Dell',
  'b0:83:fe': 'Dell',
  'd4:ae:52': 'Dell',
  'f4:8e:38': 'Dell',
  'f8:bc:12': 'Dell',
  '00:17:a4': 'HPE',
  '1c:98:ec': 'HPE',
  '48:df:37': 'HPE',
  '94:18:82': 'HPE',
  '98:f2:b3': 'HPE',
  'ec:eb:b8': 'HPE',
  '00:1b:78': 'HP',
  '00:25:b3': 'HP',
  '3c:a8:2a': 'HP',
  '9c:b6:54': 'HP',
  // Small boards used as lab machines
  'b8:27:eb': 'Raspberry Pi',
  'dc:a6:32': 'Raspberry Pi',
  'e4:5f:01': 'Raspberry Pi',
}

/** The vendor of a canonical MAC (`aa:bb:cc:dd:ee:ff`): a table entry, "locally administered", or undefined. */
export function nicVendor(mac: string): string | undefined {
  const oui = mac.slice(0, 8).toLowerCase()
  const known = OUI_VENDORS[oui]
  if (known !== undefined) return known
  const first = Number.parseInt(mac.slice(0, 2), 16)
  if (Number.isNaN(first)) return undefined
  return (first & 0x02) !== 0 ? 'locally administered' : undefined
}
