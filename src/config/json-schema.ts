/** The config schema as a standalone JSON Schema document (draft-07), for editors. */
import { ConfigSchema } from './schema.js'

/** JSON text of the schema; typebox's symbol-keyed metadata drops out in JSON.stringify. */
export function configJsonSchema(): string {
  const doc = { $schema: 'http://json-schema.org/draft-07/schema#', title: 'pxebox config.yaml', ...ConfigSchema }
  return JSON.stringify(doc, null, 2) + '\n'
}
