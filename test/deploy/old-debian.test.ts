/**
 * README command 1 on Debian 12 (bookworm), whose nodejs is 18: scripts/install.sh must stop before installing
 * anything and say what to do (issue 15: it used to install nodejs 18 and npm 9, then refuse them). Run in a chroot of
 * a debootstrapped bookworm minbase (cached like the Debian 13 one); apt reads the archive's package lists there.
 */
import t from 'tap'
import { mkdtempSync } from 'node:fs'
import { join } from 'node:path'
import { copyCheckout, deployUnavailable, prepareRoot, rootfsTarball, sh } from './lib.js'

t.setTimeout(20 * 60_000)
const why = deployUnavailable(['debootstrap', 'chroot', 'git'])

t.test('install.sh on Debian 12 stops before installing anything and says what to do', { skip: why ?? false }, async (t) => {
  const tarball = await rootfsTarball('bookworm', 'ca-certificates,sudo')
  const dir = mkdtempSync('/var/tmp/pxebox-bookworm-')
  const root = join(dir, 'root')
  t.teardown(() => sh(`rm -rf '${dir}'`, { timeoutMs: 600_000 }).catch(() => undefined))
  await sh(`mkdir -p '${root}' && tar -C '${root}' -xf '${tarball}'`, { timeoutMs: 120_000 })
  await prepareRoot(root)
  await copyCheckout(join(root, 'root/pxebox'))
  const packages = () => sh(`chroot '${root}' dpkg-query -W -f='\${Package}\\n' | sort`)
  const before = await packages()
  const out = await sh(`chroot '${root}' env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root bash -c 'cd /root/pxebox && sudo bash scripts/install.sh; echo "exit=$?"' 2>&1`, { timeoutMs: 300_000 })
  t.match(out, /exit=2/, 'install.sh exits 2')
  t.match(out, /pxebox needs Node\.js 20 or newer; this machine \(Debian GNU\/Linux 12 \(bookworm\)\) has the nodejs package 18\./, 'it names the Node.js it found')
  t.match(out, /Nothing was installed/)
  t.match(out, /Debian 13 \(trixie\) ships nodejs 20/, 'and what to do')
  t.match(out, /Running as a container/)
  t.equal(await packages(), before, 'no package was installed')
})
