import t from 'tap'
import { planBoot } from '../../src/catalog/boot-plan.js'
import { absoluteUrl, bootstrapScript, renderIpxeScript } from '../../src/boot/ipxe-script.js'

function plan(kernel: string, initrd: string[], args: string[]) {
  const r = planBoot(kernel, initrd, args)
  if (!r.ok) throw new Error(r.errors.join('; '))
  return r.value
}

t.test('boot script', async (t) => {
  const p = plan('/k', ['--timeout 5000 --name main http://x/i.img?v=1 extra'], [])
  t.equal(renderIpxeScript(p, 'http://s'), '#!ipxe\nkernel http://s/k initrd=main\ninitrd --timeout 5000 --name main http://x/i.img?v=1 extra\nboot\n')
})

t.test('URLs', async (t) => {
  t.equal(absoluteUrl('/assets/k', 'http://10.0.0.2:8080/'), 'http://10.0.0.2:8080/assets/k')
  t.equal(absoluteUrl('//host/k', 'http://s'), '//host/k')
  t.equal(absoluteUrl('${base}/k', 'http://s'), '${base}/k')
  t.equal(absoluteUrl('tftp://s/k', 'http://s'), 'tftp://s/k')
  t.equal(bootstrapScript('http://s:1/'), '#!ipxe\nchain http://s:1/ipxe?mac=${mac:hexhyp}&uuid=${uuid}&serial_hex=${serial:hexraw}&hostname=${hostname:uristring}&domain=${domain:uristring}&arch=${buildarch}&platform=${platform}\n')
})

t.test('with syslog on, the bootstrap and profile scripts set iPXE syslog first (profile args may use ${syslog})', async (t) => {
  t.match(bootstrapScript('http://s:1', '10.213.0.2'), /^#!ipxe\nset syslog 10\.213\.0\.2\nchain http:\/\/s:1\/ipxe\?mac=/)
  const plan = { kernel: '/assets/k', args: ['inst.syslog=${syslog}'], initrds: [] }
  t.equal(renderIpxeScript(plan, 'http://s:1', '10.213.0.2'), '#!ipxe\nset syslog 10.213.0.2\nkernel http://s:1/assets/k inst.syslog=${syslog}\nboot\n')
  t.equal(renderIpxeScript(plan, 'http://s:1'), '#!ipxe\nkernel http://s:1/assets/k inst.syslog=${syslog}\nboot\n')
  t.throws(() => bootstrapScript('http://s:1', '10.0.0.2; shell'))
})
