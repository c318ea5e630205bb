// `pop2mqtt schema`: print the JSON Schema generated from the zod config schema.
import { configJsonSchema } from '../../config/index.js';

export async function schemaCommand(): Promise<number> {
  process.stdout.write(JSON.stringify(configJsonSchema(), null, 2) + '\n');
  return 0;
}
