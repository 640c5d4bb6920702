import t from 'tap'
import { readFileSync } from 'node:fs'
import { configJsonSchema } from '../../src/config/json-schema.js'
import { loadConfig } from '../../src/config/load.js'

t.test('config/pxebox.schema.json is generated from the current schema (run `npm run schema`)', async (t) => {
  t.equal(readFileSync(new URL('../../config/pxebox.schema.json', import.meta.url), 'utf8'), configJsonSchema())
})

t.test('the shipped default config loads', async (t) => {
  const c = loadConfig(new URL('../../config/config.yaml', import.meta.url).pathname)
  t.equal(c.dhcp.mode, 'proxy')
  t.equal(c.interface, 'auto')
})

t.test('config.example.yaml, which documents every key, is a valid config', async (t) => {
  const c = loadConfig(new URL('../../config/config.example.yaml', import.meta.url).pathname)
  t.equal(c.groups[0]?.id, 'rack1-workers')
  t.same(c.groups[0]?.selector?.mac, ['52:54:00:00:00:01', '52:54:00:00:00:02'])
})
