import t from 'tap'
import { planBoot, urlBasename } from '../../src/catalog/boot-plan.js'

function plan(kernel: string, initrd: string[], args: string[]) {
  const r = planBoot(kernel, initrd, args)
  if (!r.ok) throw new Error(r.errors.join('; '))
  return r.value
}

t.test('initrd naming rules', async (t) => {
  t.same(plan('/k', ['/a/initrd.img'], []).args, ['initrd=initrd.img'], 'basename when unnamed')
  t.same(plan('/k', ['-n main /a/i.img'], ['initrd=main', 'x']).args, ['initrd=main', 'x'], 'explicit name already referenced: nothing added')
  t.same(plan('/k', ['--name=main /a/i.img', '/b/fw.cpio'], ['quiet']).args, ['initrd=main', 'initrd=fw.cpio', 'quiet'], 'added in initrd order before args')
  t.same(plan('/k', ['/a/i.img'], ['initrd=main']).initrds[0]?.name, 'main', 'stale initrd= binds to first unnamed initrd')
  t.same(plan('/k', [], ['initrd=main']).args, ['initrd=main'], 'no initrds: args untouched')
  t.same(plan('/k', ['/a/i.img'], ['', '  ', 'quiet']).args, ['initrd=i.img', 'quiet'], 'blank args dropped')
  const p = plan('/k', ['--timeout 5000 --name main http://x/i.img?v=1 extra'], [])
  t.same(p.initrds[0], { name: 'main', url: 'http://x/i.img?v=1', options: ['--timeout', '5000'], rest: ['extra'] })
})

t.test('bad boot values are load errors', async (t) => {
  const cases: [string, string[], string[], RegExp][] = [
    ['/k', [], ['a\nchain http://evil/'], /contains a line break/],
    ['/k arg', [], [], /must be a single URL/],
    ['/k', ['--name'], [], /--name needs a value/],
    ['/k', ['--name x'], [], /has no URL/],
    ['/k', ['/a/i.img', '/b/i.img'], [], /two initrds are both named "i.img"/],
    ['/k', ['http://x/dir/'], [], /has no usable name/],
  ]
  for (const [kernel, initrd, args, re] of cases) {
    const r = planBoot(kernel, initrd, args)
    t.notOk(r.ok, `${kernel} ${initrd} ${args}`)
    if (!r.ok) t.match(r.errors.join('\n'), re)
  }
})

t.test('image names', async (t) => {
  t.equal(urlBasename('http://x/a/b.img?q=/z#f'), 'b.img')
})
