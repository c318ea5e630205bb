// The pop2mqtt side of the bench: config files for the workloads, `once` under /usr/bin/time, and the daemon (`run`) as a child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { measuredEnv, timedRun, type TimedRun } from './proc.js';
import { NVR_DOMAIN, PANEL_DOMAIN } from './corpus.js';

export interface AgentSetup {
  /** The esbuild bundle (dist/pop2mqtt.cjs built for this run). */
  bundle: string;
  /** A single binary (dist/pop2mqtt-linux-x64) to run instead of node and the bundle. */
  binary?: string;
  /** Working dir: configs and state dirs live here. */
  dir: string;
  mqttUrl: string;
  /** POP3S port the agent connects to by default (the counting relay in front of Dovecot's implicit TLS port). */
  pop3Port: number;
  caFile: string;
  user: string;
  pass: string;
}

const CAMERA = `      from: { domain: { is: "${NVR_DOMAIN}" } }
      subject: { regex: "^ALARM: (?<event>.+?) (?<camera>Camera \\\\d+)$" }
`;
const PANEL_RULE = `  - name: alarm-panel
    when:
      from: { domain: { is: "${PANEL_DOMAIN}" } }
      subject: { regex: "^ALARM: (?<zone>Zone \\\\d+) (?<event>.+)$" }
    publish: { topic: "alerts/panel" }
`;

/** Header-only rules: every alarm alerts, nothing needs the body. */
export function headerRules(): string {
  return `  - name: camera-motion
    when:
${CAMERA}    publish: { topic: "alerts/camera/{{camera}}" }
${PANEL_RULE}`;
}

/** A body rule for camera alarms (needs RETR: attachment condition, snapshot published) plus the header-only panel rule. */
export function snapshotRules(): string {
  return `  - name: camera-snapshot
    when:
${CAMERA}      attachment: { type: "image/*" }
    publish: { topic: "alerts/camera/{{camera}}" }
    attachments: { topic: "snapshots/{{camera}}", types: ["image/*"] }
${PANEL_RULE}`;
}

export class AgentHarness {
  constructor(private readonly s: AgentSetup) {}

  /** The measured environment (no NODE_* variable, see measuredEnv), for the bundle and a binary alike. */
  get env(): NodeJS.ProcessEnv {
    return measuredEnv({ BENCH_POP3_PASSWORD: this.s.pass });
  }

  /** The same harness running a single binary instead of node and the bundle. */
  withBinary(binary: string): AgentHarness {
    return new AgentHarness({ ...this.s, binary });
  }

  private command(sub: string, config: string): [string, string[]] {
    return this.s.binary ? [this.s.binary, [sub, '--config', config]] : [process.execPath, [this.s.bundle, sub, '--config', config]];
  }

  /** Write a config (one mailbox behind the relay, keep: true, existing: process, 1 s schedule for the daemon). */
  async writeConfig(name: string, o: { stateDir: string; rules: string; logLevel?: string; port?: number }): Promise<string> {
    const file = path.join(this.s.dir, `${name}.yaml`);
    const yaml = `state_dir: ${path.join(this.s.dir, o.stateDir)}
log_level: ${o.logLevel ?? 'info'}
mqtt:
  url: ${this.s.mqttUrl}
  base_topic: pop2mqtt
mailboxes:
  - id: bench
    host: 127.0.0.1
    port: ${o.port ?? this.s.pop3Port}
    tls: implicit
    ca_file: ${this.s.caFile}
    servername: localhost
    username: ${this.s.user}
    password: \${BENCH_POP3_PASSWORD}
    schedule: "* * * * * *"
    keep: true
    existing: process
rules:
${o.rules}`;
    await writeFile(file, yaml, { mode: 0o600 });
    return file;
  }

  /** `pop2mqtt once` under /usr/bin/time -v; throws unless it exits 0. */
  async once(config: string, timeoutMs = 600_000): Promise<TimedRun> {
    const [cmd, args] = this.command('once', config);
    const r = await timedRun(cmd, args, { env: this.env, cwd: this.s.dir, timeoutMs });
    if (r.code !== 0) throw new Error(`pop2mqtt once exited with ${r.code ?? r.signal}\n${r.stderr.slice(-3000)}`);
    return r;
  }

  /** `pop2mqtt run` in the background; the caller stops it. */
  daemon(config: string): { child: ChildProcess; output: () => string } {
    const [cmd, args] = this.command('run', config);
    const child = spawn(cmd, args, { env: this.env, cwd: this.s.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out = (out + d).slice(-50_000)));
    child.stderr!.on('data', (d) => (out = (out + d).slice(-50_000)));
    return { child, output: () => out };
  }
}
