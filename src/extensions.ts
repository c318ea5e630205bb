// Which extensions the agent loads: each is a dynamic import(), so code whose feature is off is never read (a chunk of the bundle of its own); a reload that changes an extension's section replaces it.
import type { Config } from './config/index.js';
import type { Extension, ExtensionContext } from './events.js';
import type { Logger } from './log.js';

interface ExtensionKind {
  name: string;
  /** The config section the extension reads: when it changes at reload, the extension is stopped and started again. */
  section(config: Config): unknown;
  wanted(config: Config): boolean;
  /** `previous`: the extension it replaces at a reload, stopped (what it learned at run time may carry over). */
  load(ctx: ExtensionContext, previous?: Extension): Promise<Extension>;
}

const KINDS: ExtensionKind[] = [{
  name: 'homeassistant',
  section: (c) => c.homeassistant,
  wanted: (c) => c.homeassistant.discovery,
  load: async (ctx, previous) => {
    const { HomeAssistant } = await import('./homeassistant/extension.js');
    return new HomeAssistant(ctx, previous instanceof HomeAssistant ? previous : undefined);
  },
}];

/** The running extensions of an agent, as its config asks: loaded and started at start, replaced on reload, stopped at the end. */
export class Extensions {
  private readonly running = new Map<ExtensionKind, { ext: Extension; section: string }>();

  constructor(private readonly ctx: ExtensionContext, private readonly log: Logger) {}

  /** Loads and starts the extensions `config` asks for (Home Assistant only with `homeassistant.discovery`). */
  async start(config: Config): Promise<void> {
    for (const kind of KINDS) if (kind.wanted(config)) await this.startOne(kind, config);
  }

  /**
   * After a reload (`ctx.config()` is already `next`): an extension whose section changed is stopped, told what
   * replaces it (`next`), and started again with the new settings when still wanted; one switched on is loaded.
   */
  async reload(next: Config): Promise<void> {
    for (const kind of KINDS) {
      const current = this.running.get(kind);
      if (current && current.section === JSON.stringify(kind.section(next))) continue;
      if (current) {
        this.running.delete(kind);
        await current.ext.stop(next);
        this.log.info('extension stopped: its settings changed', { extension: kind.name });
      }
      if (kind.wanted(next)) await this.startOne(kind, next, current?.ext);
    }
  }

  /** Stops every extension (agent shutdown: what they announced stays on the broker). */
  async stop(): Promise<void> {
    for (const { ext } of this.running.values()) await ext.stop().catch(() => {});
    this.running.clear();
  }

  private async startOne(kind: ExtensionKind, config: Config, previous?: Extension): Promise<void> {
    const ext = await kind.load(this.ctx, previous);
    await ext.start();
    this.running.set(kind, { ext, section: JSON.stringify(kind.section(config)) });
  }
}
