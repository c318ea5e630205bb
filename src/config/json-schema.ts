// JSON Schema (draft 2020-12) of the config file, generated from the zod schema, for `pop2mqtt schema` and editors.
import { toJSONSchema } from '../zod.js';
import { ConfigSchema } from './schema.js';

/** The schema of what users write (input side: durations and sizes as strings, defaults shown). */
export function configJsonSchema(): Record<string, unknown> {
  const schema = toJSONSchema(ConfigSchema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return {
    $schema: schema.$schema,
    $id: 'https://github.com/pop2mqtt/pop2mqtt/config.schema.json',
    title: 'pop2mqtt configuration',
    ...schema,
  };
}
