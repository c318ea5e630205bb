// Which extensions the agent loads: each is a dynamic import(), so code whose feature is off is never read (a chunk of the bundle of its own).
import type { Config } from './config/index.js';
import type { Extension, ExtensionContext } from './events.js';

/** The extensions `config` asks for, constructed (not started). Home Assistant only with `homeassistant.discovery`. */
export async function loadExtensions(config: Config, ctx: ExtensionContext): Promise<Extension[]> {
  const out: Extension[] = [];
  if (config.homeassistant.discovery) {
    const { HomeAssistant } = await import('./homeassistant/extension.js');
    out.push(new HomeAssistant(ctx));
  }
  return out;
}
