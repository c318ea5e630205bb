// Loads the config for a command, printing ConfigError issues (path and line) to stderr.
import { ConfigError, loadConfig, type LoadedConfig } from '../../config/index.js';

export async function loadOrReport(file: string, command: string, opts: { offline?: boolean } = {}): Promise<LoadedConfig | null> {
  try {
    return await loadConfig(file, opts);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`pop2mqtt ${command}: ${file}: invalid config\n${err.message}\n`);
      return null;
    }
    throw err;
  }
}
