// RFC 2449 CAPA result: capability names are case-insensitive, each may carry arguments (e.g. "SASL PLAIN LOGIN").

export class Capabilities {
  private readonly map = new Map<string, string[]>();

  /** The raw capability lines as the server sent them. */
  readonly lines: string[];

  constructor(lines: readonly string[]) {
    this.lines = [...lines];
    for (const line of lines) {
      const words = line.trim().split(/\s+/).filter((w) => w.length > 0);
      if (words.length === 0) continue;
      const name = words[0]!.toUpperCase();
      const args = words.slice(1);
      const prev = this.map.get(name);
      this.map.set(name, prev ? [...prev, ...args] : args);
    }
  }

  /** Parse the data of a multi-line "+OK" reply to CAPA. */
  static parse(data: Buffer): Capabilities {
    const lines = data
      .toString('utf8')
      .split('\r\n')
      .filter((l) => l.trim().length > 0);
    return new Capabilities(lines);
  }

  has(name: string): boolean {
    return this.map.has(name.toUpperCase());
  }

  /** Arguments of a capability (empty array when it has none), or undefined when not advertised. */
  get(name: string): string[] | undefined {
    const v = this.map.get(name.toUpperCase());
    return v ? [...v] : undefined;
  }

  /** SASL mechanisms advertised, upper-cased. */
  get saslMechanisms(): string[] {
    return (this.map.get('SASL') ?? []).map((m) => m.toUpperCase());
  }

  get names(): string[] {
    return [...this.map.keys()];
  }
}
