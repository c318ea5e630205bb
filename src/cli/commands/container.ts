// The container image's entrypoint (`pop2mqtt container [COMMAND ...]`): in a Home Assistant add-on writes the config from the add-on options and the Supervisor's MQTT service; started as root, hands /data to the unprivileged user and drops to it; then names the command to run.
import { chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync, type Stats } from 'node:fs';
import path from 'node:path';
import { addonConfig, fetchMqttService, parseAddonOptions, AddonOptionsError } from './addon-options.js';

/** The image's unprivileged user (its /etc/passwd entry is written by scripts/image/build-image.ts). */
export const CONTAINER_USER = 'pop2mqtt';
export const CONTAINER_UID = 1000;
export const CONTAINER_GID = 1000;
/** The volume for config and state. */
export const DATA_DIR = '/data';

export interface ContainerEnv {
  dataDir: string;
  supervisorUrl: string;
  supervisorToken?: string;
}

export function containerEnv(env: NodeJS.ProcessEnv = process.env): ContainerEnv {
  return {
    // Overridable so the tests can run the entrypoint outside an image.
    dataDir: env.POP2MQTT_DATA_DIR || DATA_DIR,
    supervisorUrl: env.POP2MQTT_SUPERVISOR_URL || 'http://supervisor',
    supervisorToken: env.SUPERVISOR_TOKEN || undefined,
  };
}

/** Add-on mode: the Supervisor gave us a token and an options file. */
export function isAddon(e: ContainerEnv): boolean {
  return e.supervisorToken !== undefined && existsSync(path.join(e.dataDir, 'options.json'));
}

function chownTree(p: string, uid: number, gid: number, depth = 0): void {
  if (depth > 32) return; // bounded: state trees are two levels deep
  const st = lstatSync(p);
  if (st.isSymbolicLink()) return;
  if (st.uid !== uid || st.gid !== gid) chownSync(p, uid, gid);
  if (st.isDirectory()) for (const n of readdirSync(p)) chownTree(path.join(p, n), uid, gid, depth + 1);
}

/** Writes the add-on's config and secret files; returns the config path. */
export async function prepareAddon(e: ContainerEnv, owner?: { uid: number; gid: number }): Promise<string> {
  const optionsFile = path.join(e.dataDir, 'options.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(optionsFile, 'utf8'));
  } catch (err) {
    throw new AddonOptionsError(`cannot read ${optionsFile}: ${(err as Error).message}`);
  }
  const options = parseAddonOptions(raw);
  const mqtt = await fetchMqttService(e.supervisorUrl, e.supervisorToken!);
  const secretsDir = path.join(e.dataDir, 'secrets');
  const files = addonConfig(options, mqtt, e.dataDir, secretsDir);
  mkdirSync(secretsDir, { recursive: true, mode: 0o700 });
  mkdirSync(path.join(e.dataDir, 'state'), { recursive: true, mode: 0o700 });
  for (const [name, content] of Object.entries(files.secrets)) writeFileSync(path.join(secretsDir, name), content, { mode: 0o600 });
  const configPath = path.join(e.dataDir, 'pop2mqtt.yaml');
  writeFileSync(configPath, files.config, { mode: 0o600 });
  if (owner) {
    for (const p of [secretsDir, path.join(e.dataDir, 'state'), configPath]) chownTree(p, owner.uid, owner.gid);
  }
  return configPath;
}

/** Whether a file with these owner and mode bits can be read by uid/gid (no ACLs, no supplementary groups). */
export function readableBy(st: Pick<Stats, 'uid' | 'gid' | 'mode'>, uid: number, gid: number): boolean {
  if (st.uid === uid) return (st.mode & 0o400) !== 0;
  if (st.gid === gid) return (st.mode & 0o040) !== 0;
  return (st.mode & 0o004) !== 0;
}

/** The --config / -c value of a command line, if any. */
function configArg(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if ((a === '--config' || a === '-c') && i + 1 < argv.length) return argv[i + 1];
    if (a.startsWith('--config=')) return a.slice('--config='.length);
  }
  return undefined;
}

/** Started as root: give the data directory to the container user, then become that user for good. */
function dropPrivileges(e: ContainerEnv): void {
  if (existsSync(e.dataDir)) {
    const st = lstatSync(e.dataDir);
    if (st.uid !== CONTAINER_UID) chownSync(e.dataDir, CONTAINER_UID, CONTAINER_GID);
  }
  process.setgroups!([CONTAINER_GID]);
  process.setgid!(CONTAINER_GID);
  process.setuid!(CONTAINER_UID);
}

/**
 * Prepares the container and returns the argv of the command to run. Without arguments: the add-on's
 * `run` in Home Assistant, else `run --config /data/config.yaml`. As root (the image's default, so that a
 * root-owned /data works, as in Home Assistant), it drops to the user pop2mqtt (uid 1000) unless
 * POP2MQTT_RUN_AS_ROOT=1; started as any other user (`--user`), it keeps that user.
 */
export async function containerArgv(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string[]> {
  const e = containerEnv(env);
  const root = process.getuid?.() === 0 && env.POP2MQTT_RUN_AS_ROOT !== '1';
  let argv = args;
  if (isAddon(e) && (args.length === 0 || (args[0] === 'run' && args.includes(path.join(e.dataDir, 'config.yaml'))))) {
    const config = await prepareAddon(e, root ? { uid: CONTAINER_UID, gid: CONTAINER_GID } : undefined);
    argv = ['run', '--config', config];
  } else if (args.length === 0) {
    argv = ['run', '--config', path.join(e.dataDir, 'config.yaml')];
  }
  if (root) {
    // Say it now, in words, rather than as an EACCES after the switch to uid 1000.
    const config = configArg(argv);
    if (config && existsSync(config) && !readableBy(statSync(config), CONTAINER_UID, CONTAINER_GID)) {
      throw new Error(`${config} is not readable by the user ${CONTAINER_USER} (uid ${CONTAINER_UID}) the container runs as: chown ${CONTAINER_UID}:${CONTAINER_GID} it (or chmod g+r with group ${CONTAINER_GID}), or start the container with --user matching its owner`);
    }
    dropPrivileges(e);
  }
  return argv;
}
