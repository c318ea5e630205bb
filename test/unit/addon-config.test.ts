// The Home Assistant add-on files checked against the rules of the Supervisor's own validator (supervisor/apps/validate.py, apps/options.py, store/validate.py, read at commit 090ef31e), and the add-on's default options through the options -> config mapping.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { addonConfig, parseAddonOptions } from '../../src/cli/commands/addon-options.js';
import { parseConfigText } from '../../src/config/index.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ADDON = path.join(ROOT, 'homeassistant-addon', 'pop2mqtt');
const readYaml = (p: string) => parseYaml(readFileSync(p, 'utf8')) as Record<string, unknown>;

// --- the Supervisor's rules, as read in its source ----------------------------------------------------------------
const ARCH_ALL = ['aarch64', 'amd64'];
const ARCH_DEPRECATED = ['armhf', 'armv7', 'i386'];
const SLUG = /^[-_.A-Za-z0-9]+$/;
const STARTUP = ['initialize', 'system', 'services', 'application', 'once'];
const BOOT = ['auto', 'manual', 'manual_only'];
const STAGE = ['stable', 'experimental', 'deprecated'];
const SERVICE = /^(mqtt|mysql):(provide|want|need)$/;
const MAP_TYPES = ['data', 'config', 'ssl', 'local_apps', 'addons', 'backup', 'share', 'media', 'homeassistant_config', 'all_app_configs', 'all_addon_configs', 'app_config', 'addon_config'];
const SCHEMA_ELEMENT =
  /^(?:|bool|email|url|port|device(?:\((?:subsystem=[a-z]+)\))?|str(?:\((?:\d+)?,(?:\d+)?\))?|password(?:\((?:\d+)?,(?:\d+)?\))?|int(?:\((?:-?\d+)?,(?:-?\d+)?\))?|float(?:\((?:-?\d*\.?\d+)?,(?:-?\d*\.?\d+)?\))?|match\((?:.*)\)|list\((?:.+)\))\??$/;
const IMAGE_COMPONENT = /^[a-z0-9{][a-z0-9.\-_{}]*$/;
/** Keys _SCHEMA_APP_CONFIG knows (it drops others silently; here an unknown key is an error, to catch typos). */
const KNOWN_KEYS = new Set([
  'name', 'version', 'slug', 'description', 'arch', 'machine', 'url', 'startup', 'boot', 'init', 'advanced', 'stage', 'ports', 'ports_description',
  'watchdog', 'webui', 'ingress', 'ingress_port', 'ingress_entry', 'ingress_stream', 'panel_icon', 'panel_title', 'panel_admin', 'homeassistant',
  'host_network', 'host_pid', 'host_ipc', 'host_uts', 'host_dbus', 'devices', 'udev', 'tmpfs', 'map', 'environment', 'privileged', 'apparmor',
  'full_access', 'audio', 'video', 'gpio', 'usb', 'uart', 'devicetree', 'kernel_modules', 'realtime', 'hassio_api', 'hassio_role', 'homeassistant_api',
  'stdin', 'legacy', 'docker_api', 'auth_api', 'services', 'discovery', 'backup_exclude', 'backup_pre', 'backup_post', 'backup', 'options', 'schema',
  'image', 'ulimits', 'timeout', 'journald', 'breaking_versions',
]);

/** Errors (and deprecation warnings, which the Supervisor logs) for an add-on config.yaml. */
function validateAddonConfig(c: Record<string, unknown>): { errors: string[]; warnings: string[] } {
  const errors: string[] = [];
  const warnings: string[] = [];
  for (const k of ['name', 'version', 'slug', 'description', 'arch']) if (c[k] === undefined) errors.push(`${k} is required`);
  for (const k of Object.keys(c)) if (!KNOWN_KEYS.has(k)) errors.push(`unknown key ${k}`);
  if (typeof c.name !== 'string' || !c.name) errors.push('name must be a non-empty string');
  if (typeof c.version !== 'string') errors.push('version must be a string (quote it)');
  if (typeof c.slug !== 'string' || !SLUG.test(c.slug)) errors.push('slug must match [-_.A-Za-z0-9]+');
  if (typeof c.description !== 'string') errors.push('description must be a string');
  if (!Array.isArray(c.arch) || c.arch.length === 0) errors.push('arch must be a list');
  else for (const a of c.arch) {
    if (![...ARCH_ALL, ...ARCH_DEPRECATED].includes(a)) errors.push(`arch ${a} unknown`);
    if (ARCH_DEPRECATED.includes(a)) warnings.push(`deprecated arch ${a}`);
  }
  if (c.url !== undefined && (typeof c.url !== 'string' || !/^https?:\/\/[^\s/]+/.test(c.url))) errors.push('url must be a URL');
  if (c.startup !== undefined && !STARTUP.includes(c.startup as string)) errors.push(`startup ${c.startup} unknown`);
  if (c.boot !== undefined && !BOOT.includes(c.boot as string)) errors.push(`boot ${c.boot} unknown`);
  if (c.stage !== undefined && !STAGE.includes(c.stage as string)) errors.push(`stage ${c.stage} unknown`);
  for (const k of ['init', 'ingress', 'host_network', 'hassio_api', 'homeassistant_api', 'auth_api', 'docker_api', 'full_access']) {
    if (c[k] !== undefined && typeof c[k] !== 'boolean') errors.push(`${k} must be a boolean`);
  }
  if (c.services !== undefined) {
    if (!Array.isArray(c.services)) errors.push('services must be a list');
    else for (const s of c.services) if (typeof s !== 'string' || !SERVICE.test(s)) errors.push(`service ${s} must match (mqtt|mysql):(provide|want|need)`);
  }
  if (c.map !== undefined) {
    for (const m of c.map as unknown[]) {
      const type = typeof m === 'string' ? m.split(':')[0] : (m as { type?: string }).type;
      if (!type || !MAP_TYPES.includes(type)) errors.push(`map type ${type} unknown`);
      if (typeof m === 'object' && m && 'read_only' in m && typeof (m as { read_only: unknown }).read_only !== 'boolean') errors.push('map read_only must be a boolean');
    }
  }
  if (c.image !== undefined) {
    const image = String(c.image);
    const first = image.split('/')[0]!;
    const hasRegistry = image.includes('/') && (first.includes('.') || first.includes(':') || first === 'localhost');
    const rest = hasRegistry ? image.slice(first.length + 1) : image;
    if (hasRegistry && first !== first.toLowerCase()) errors.push('image registry must be lowercase');
    if (rest.includes(':')) errors.push('image must not carry a tag (the version is the tag)');
    for (const comp of rest.split('/')) if (!IMAGE_COMPONENT.test(comp)) errors.push(`image path component ${comp} invalid`);
  }
  if (c.timeout !== undefined && (typeof c.timeout !== 'number' || c.timeout < 10 || c.timeout > 300)) errors.push('timeout must be 10..300');
  const checkElement = (v: unknown, where: string, inList = false): void => {
    if (typeof v === 'string') {
      if (!SCHEMA_ELEMENT.test(v)) errors.push(`schema ${where}: ${v} is not a schema element`);
    } else if (Array.isArray(v)) {
      if (inList) errors.push(`schema ${where}: a list may not directly contain another list`);
      if (v.length !== 1) errors.push(`schema ${where}: a list holds exactly one element type`);
      for (const e of v) {
        if (Array.isArray(e)) errors.push(`schema ${where}: a list may not directly contain another list`);
        else checkElement(e, `${where}[]`, true);
      }
    } else if (v && typeof v === 'object') {
      for (const [k, e] of Object.entries(v)) checkElement(e, `${where}.${k}`);
    } else errors.push(`schema ${where}: unexpected ${JSON.stringify(v)}`);
  };
  if (c.schema !== undefined && c.schema !== false) {
    if (typeof c.schema !== 'object' || c.schema === null) errors.push('schema must be a mapping or false');
    else for (const [k, v] of Object.entries(c.schema)) checkElement(v, k);
  }
  if (c.options !== undefined && (typeof c.options !== 'object' || c.options === null || Array.isArray(c.options))) errors.push('options must be a mapping');
  return { errors, warnings };
}

/** The options checked against the schema, the way the Supervisor checks a user's options (apps/options.py), for the element types used here. */
function validateOptions(options: Record<string, unknown>, schema: Record<string, unknown>): string[] {
  const errors: string[] = [];
  const checkValue = (v: unknown, el: string, where: string) => {
    const type = el.replace(/\?$/, '');
    if (type === 'bool') { if (typeof v !== 'boolean') errors.push(`${where}: expected bool`); return; }
    if (type === 'port') { if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > 65535) errors.push(`${where}: expected port`); return; }
    if (type.startsWith('str') || type.startsWith('password')) { if (typeof v !== 'string') errors.push(`${where}: expected string`); return; }
    let m = /^list\((.+)\)$/.exec(type);
    if (m) { if (!m[1]!.split('|').includes(String(v))) errors.push(`${where}: ${v} not in ${m[1]}`); return; }
    m = /^match\((.+)\)$/.exec(type);
    if (m) { if (typeof v !== 'string' || !new RegExp(`^(?:${m[1]})$`).test(v)) errors.push(`${where}: does not match ${m[1]}`); return; }
    errors.push(`${where}: element ${el} not handled by this check`);
  };
  const checkNode = (v: unknown, s: unknown, where: string) => {
    if (Array.isArray(s)) {
      if (!Array.isArray(v)) { errors.push(`${where}: expected a list`); return; }
      v.forEach((item, i) => checkNode(item, s[0], `${where}[${i}]`));
    } else if (s && typeof s === 'object') {
      if (!v || typeof v !== 'object') { errors.push(`${where}: expected a mapping`); return; }
      const o = v as Record<string, unknown>;
      for (const k of Object.keys(o)) if (!(k in s)) errors.push(`${where}.${k}: not in the schema`);
      for (const [k, e] of Object.entries(s)) {
        if (o[k] === undefined) { if (!(typeof e === 'string' && e.endsWith('?')) && !Array.isArray(e)) errors.push(`${where}.${k}: required`); continue; }
        checkNode(o[k], e, `${where}.${k}`);
      }
    } else checkValue(v, String(s), where);
  };
  checkNode(options, schema, 'options');
  return errors;
}

// --- the checks ---------------------------------------------------------------------------------------------------
const config = readYaml(path.join(ADDON, 'config.yaml'));

test('the validator itself catches what the Supervisor rejects', () => {
  const bad = validateAddonConfig({ name: 'x', version: 1, slug: 'a b', description: 'd', arch: ['armv7', 'sparc'], services: ['mqtt:must'], image: 'ghcr.io/x/y:1.0', schema: { a: 'text', b: [['str']] }, colour: 1 });
  for (const want of [/version must be a string/, /slug must match/, /arch sparc unknown/, /service mqtt:must/, /must not carry a tag/, /schema a: text/, /another list/, /unknown key colour/]) {
    assert.ok(bad.errors.some((e) => want.test(e)), `expected an error like ${want}: ${bad.errors.join('; ')}`);
  }
  assert.deepEqual(bad.warnings, ['deprecated arch armv7']);
  assert.deepEqual(validateOptions({ a: 'x', n: 70000, extra: 1 }, { a: 'list(b|c)', n: 'port', m: 'str' }), [
    'options.extra: not in the schema', 'options.a: x not in b|c', 'options.n: expected port', 'options.m: required',
  ]);
});

test('config.yaml passes the Supervisor rules, without deprecation warnings', () => {
  const { errors, warnings } = validateAddonConfig(config);
  assert.deepEqual(errors, []);
  assert.deepEqual(warnings, []);
  assert.deepEqual(config.services, ['mqtt:need'], 'the broker comes from the Supervisor');
  assert.equal((config.options as Record<string, unknown>).discovery, true, 'discovery on by default');
  assert.match(String(config.image), /\{arch\}/, 'one image per architecture');
});

test('config.yaml version is the package version (the image tag the Supervisor pulls)', () => {
  const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string };
  assert.equal(config.version, pkg.version);
});

test('the default options and a filled-in example satisfy the schema', () => {
  const schema = config.schema as Record<string, unknown>;
  assert.deepEqual(validateOptions(config.options as Record<string, unknown>, schema), []);
  const example = {
    ...(config.options as Record<string, unknown>),
    mailboxes: [{ id: 'nvr', host: 'pop.gmail.com', port: 995, tls: 'implicit', username: 'a@gmail.com', password: 'app pw', schedule: '*/2 * * * *', existing: 'skip' }],
    rules: '- name: m\n  when: { subject: { contains: Motion } }\n',
  };
  assert.deepEqual(validateOptions(example, schema), []);
  assert.deepEqual(validateOptions({ ...example, mailboxes: [{ ...example.mailboxes[0], id: 'has space' }] }, schema), ['options.mailboxes[0].id: does not match ^[A-Za-z0-9_-]{1,64}$']);
  // Every mailbox key the UI offers is one the mapping knows.
  const mailboxSchema = (schema.mailboxes as Record<string, unknown>[])[0]!;
  assert.doesNotThrow(() => parseAddonOptions({ mailboxes: [Object.fromEntries(Object.keys(mailboxSchema).map((k) => [k, k === 'port' ? 995 : 'x']))] }));
});

test('the options the UI produces map to a config pop2mqtt accepts', () => {
  const options = parseAddonOptions({
    ...(config.options as Record<string, unknown>),
    mailboxes: [{ id: 'nvr', host: 'pop.gmail.com', username: 'a@gmail.com', password: 'app pw' }],
    rules: '- name: camera-motion\n  when:\n    subject: { regex: "^Motion Detected: (?<camera>.+)$" }\n  publish: { topic: "camera/{{camera}}" }\n',
  });
  const dir = mkdtempSync(path.join(tmpdir(), 'p2m-addon-cfg-'));
  try {
    const files = addonConfig(options, { host: 'core-mosquitto', port: 1883, username: 'addons', password: 'pw' }, dir, dir);
    for (const [n, c] of Object.entries(files.secrets)) writeFileSync(path.join(dir, n), c, { mode: 0o600 });
    const loaded = parseConfigText(files.config, { file: path.join(dir, 'pop2mqtt.yaml'), env: {} });
    assert.equal(loaded.config.mailboxes[0]!.password, 'app pw');
    assert.equal(loaded.config.mqtt.password, 'pw');
    assert.equal(loaded.config.homeassistant.discovery, true);
    assert.equal(loaded.config.mqtt.url, 'mqtt://core-mosquitto:1883');
    assert.equal(loaded.config.rules[0]!.name, 'camera-motion');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('translations name every option; repository.yaml and the store files are in place', () => {
  const en = readYaml(path.join(ADDON, 'translations', 'en.yaml'));
  const conf = en.configuration as Record<string, { name?: unknown; description?: unknown }>;
  assert.deepEqual(Object.keys(conf).sort(), Object.keys(config.schema as object).sort());
  for (const [k, v] of Object.entries(conf)) {
    assert.equal(typeof v.name, 'string', `${k}.name`);
    assert.ok(v.description === undefined || v.description === null || typeof v.description === 'string', `${k}.description`);
  }
  const repo = readYaml(path.join(ROOT, 'repository.yaml'));
  assert.equal(typeof repo.name, 'string');
  assert.ok(repo.url === undefined || /^https?:\/\//.test(String(repo.url)));
  assert.ok(repo.maintainer === undefined || typeof repo.maintainer === 'string');
  for (const f of ['DOCS.md', 'README.md', 'icon.png', 'logo.png']) assert.ok(existsSync(path.join(ADDON, f)), f);
  const png = readFileSync(path.join(ADDON, 'icon.png'));
  assert.equal(png.subarray(1, 4).toString(), 'PNG');
  assert.deepEqual([png.readUInt32BE(16), png.readUInt32BE(20)], [128, 128]);
  // The add-on's CHANGELOG.md is the project's (a relative link that resolves inside the repository).
  assert.ok(lstatSync(path.join(ADDON, 'CHANGELOG.md')).isSymbolicLink());
  assert.equal(path.resolve(ADDON, readlinkSync(path.join(ADDON, 'CHANGELOG.md'))), path.join(ROOT, 'CHANGELOG.md'));
  // The Supervisor takes every config.{yaml,yml,json} below the repository root (outside hidden and rootfs folders)
  // for an add-on: the add-on's must be the only one in the repository.
  const candidates = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => /(^|\/)config\.(ya?ml|json)$/.test(f) && !f.split('/').some((p) => p.startsWith('.') || p === 'rootfs'));
  assert.deepEqual(candidates, ['homeassistant-addon/pop2mqtt/config.yaml']);
});
