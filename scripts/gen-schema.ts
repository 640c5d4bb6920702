/**
 * Writes config/pxebox.schema.json from the typebox config schema, so editors complete and check config.yaml keys.
 * Run with `npm run schema`; test/config/schema-file.test.ts fails when the committed file is out of date.
 */
import { writeFileSync } from 'node:fs'
import { configJsonSchema } from '../src/config/json-schema.js'

const out = new URL('../../config/pxebox.schema.json', import.meta.url)
writeFileSync(out, configJsonSchema())
console.log(`wrote ${out.pathname}`)
