// Loads each device recipe in config/examples/ through RuleSchema and checks the publications its sample mails produce.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { RuleSchema, compileRules, type RuleConfig } from '../../src/rules/index.js';
import { explainMessage, type ExplainResult } from '../../src/alerts/explain.js';
import { parseConfigText } from '../../src/config/index.js';

const EXAMPLES = fileURLToPath(new URL('../../config/examples/', import.meta.url));
const NOW = new Date('2025-07-01T09:00:00Z'); // sample mails are dated 2025-07-01 around 10:45 +0200
const GARAGE_TOKEN = 'T0k3n-Garage-2025';

function loadRecipe(file: string) {
  // The agent's loader substitutes ${ENV}; do the same for the one variable the recipes use.
  const text = readFileSync(EXAMPLES + file, 'utf8').replaceAll('${GARAGE_TOKEN}', GARAGE_TOKEN);
  const doc = parseYaml(text) as { rules: unknown[]; trusted_authserv_ids?: string[] };
  const rules = doc.rules.map((r, i) => {
    const res = RuleSchema.safeParse(r);
    assert.ok(res.success, `${file} rules[${i}]: ${res.success ? '' : JSON.stringify(res.error.issues)}`);
    return res.data as RuleConfig;
  });
  return compileRules(rules, { trustedAuthservIds: doc.trusted_authserv_ids ?? [] });
}

async function run(recipe: ReturnType<typeof loadRecipe>, mail: string): Promise<ExplainResult> {
  const raw = readFileSync(EXAMPLES + 'mail/' + mail);
  return explainMessage(raw, recipe, { now: NOW, mailbox: 'home', uid: mail, baseTopic: 'pop2mqtt', maxMessageSize: 25 * 1024 * 1024 });
}
const pubs = (r: ExplainResult) => r.rules.flatMap((x) => x.publications);
const alert = (r: ExplainResult, i = 0) => JSON.parse(pubs(r).filter((p) => p.kind === 'alert')[i]!.payload!) as Record<string, unknown>;

test('camera-snapshot: motion mail → JSON alert + retained JPEG on the HA image topic', { timeout: 10000 }, async () => {
  const rs = loadRecipe('camera-snapshot.yaml');
  const r = await run(rs, 'camera-motion-driveway.eml');
  assert.deepEqual(r.matched, ['camera-motion']);
  assert.equal(r.wouldFetch, 'RETR');
  assert.deepEqual(pubs(r).map((p) => [p.kind, p.topic, p.retain]), [
    ['alert', 'pop2mqtt/camera/Driveway/event', false],
    ['attachment', 'pop2mqtt/camera/Driveway/snapshot', true],
    ['attachment-meta', 'pop2mqtt/camera/Driveway/snapshot/meta', true],
  ]);
  const a = alert(r);
  assert.equal(a.event, 'Motion');
  assert.equal(a.camera, 'Driveway');
  assert.equal(a.from_address, 'nvr@cameras.home.arpa');
  const jpeg = pubs(r).find((p) => p.kind === 'attachment')!;
  assert.ok(jpeg.bytes > 50);
  const meta = JSON.parse(pubs(r).find((p) => p.kind === 'attachment-meta')!.payload!);
  assert.equal(meta.filename, 'driveway_20250701104500.jpg');
  assert.equal(meta.content_type, 'image/jpeg');
  assert.equal(rs.rules[0]!.then, 'delete');
});

test('camera-snapshot: NVR health mail → retained template payload, decided from headers', { timeout: 10000 }, async () => {
  const r = await run(loadRecipe('camera-snapshot.yaml'), 'camera-hdd-error.eml');
  assert.deepEqual(r.matched, ['nvr-health']);
  assert.equal(r.wouldFetch, 'TOP 0');
  const p = pubs(r)[0]!;
  assert.deepEqual([p.topic, p.retain], ['pop2mqtt/camera/nvr/health', true]);
  assert.deepEqual(JSON.parse(p.payload!), { problem: 'HDD Error', subject: 'HDD Error on NVR-01', date: '2025-07-01T08:40:00.000Z' });
});

test('camera-snapshot: a display name that pretends to be the NVR does not match, and nothing is downloaded', { timeout: 10000 }, async () => {
  const r = await run(loadRecipe('camera-snapshot.yaml'), 'camera-spoofed-name.eml');
  assert.deepEqual(r.matched, []);
  assert.equal(r.wouldFetch, 'TOP 0');
});

test('ups-nas: power failure / restored → retained state from headers only', { timeout: 10000 }, async () => {
  const rs = loadRecipe('ups-nas.yaml');
  const down = await run(rs, 'ups-power-failure.eml');
  assert.deepEqual(down.matched, ['ups-on-battery']);
  assert.equal(down.wouldFetch, 'TOP 0');
  assert.deepEqual(pubs(down).map((p) => [p.topic, p.payload, p.retain]), [['pop2mqtt/ups/rack-ups/power', 'on_battery', true]]);
  const up = await run(rs, 'ups-power-returned.eml');
  assert.deepEqual(up.matched, ['ups-power-restored']);
  assert.deepEqual(pubs(up).map((p) => [p.topic, p.payload]), [['pop2mqtt/ups/rack-ups/power', 'online']]);
});

test('ups-nas: degraded volume found in the quoted-printable preview (TOP 15, no RETR)', { timeout: 10000 }, async () => {
  const rs = loadRecipe('ups-nas.yaml');
  const r = await run(rs, 'nas-volume-degraded.eml');
  assert.deepEqual(r.matched, ['nas-volume-problem']);
  assert.equal(r.wouldFetch, 'TOP 15');
  assert.deepEqual(pubs(r).map((p) => p.topic), ['pop2mqtt/nas/DiskStation/alert', 'pop2mqtt/nas/DiskStation/volume/1']);
  const a = alert(r);
  assert.equal(a.volume, '1');
  assert.equal(a.condition, 'degraded');
  assert.match(String(a.preview), /Storage Pool 1 has failed – please/);
  assert.equal(pubs(r)[1]!.payload, 'degraded');
  const other = await run(rs, 'nas-update-available.eml');
  assert.deepEqual(other.matched, []);
  assert.equal(other.wouldFetch, 'TOP 15');
});

test('alarm-panel: live alarm → QoS 2 alert with zone; stale alarm ignored; arming state; test reports deleted silently', { timeout: 10000 }, async () => {
  const rs = loadRecipe('alarm-panel.yaml');
  const live = await run(rs, 'alarm-zone-3.eml');
  assert.deepEqual(live.matched, ['alarm-triggered']);
  assert.equal(live.wouldFetch, 'TOP 5');
  const p = pubs(live)[0]!;
  assert.deepEqual([p.topic, p.qos], ['pop2mqtt/alarm/zone/3', 2]);
  assert.equal(alert(live).zone_name, 'Front Door');
  const stale = await run(rs, 'alarm-stale.eml');
  assert.deepEqual(stale.matched, []);
  assert.equal(stale.wouldFetch, 'TOP 0'); // the date fails on the headers: no preview needed
  const armed = await run(rs, 'alarm-armed.eml');
  assert.deepEqual(armed.matched, ['alarm-arming']);
  assert.deepEqual(pubs(armed).map((x) => [x.topic, x.payload, x.retain, x.userProperties]), [['pop2mqtt/alarm/state', 'Armed', true, { user: 'Alice' }]]);
  const periodic = await run(rs, 'alarm-periodic-test.eml');
  assert.deepEqual(periodic.matched, ['alarm-test-report']);
  assert.deepEqual(pubs(periodic), []);
  assert.equal(rs.rules.find((x) => x.name === 'alarm-test-report')!.then, 'delete');
});

test('command-mail: authenticated sender with the token triggers the device; the token never leaks', { timeout: 10000 }, async () => {
  const rs = loadRecipe('command-mail.yaml');
  assert.equal(rs.rules[0]!.action, true);
  const r = await run(rs, 'command-open-authenticated.eml');
  assert.deepEqual(r.matched, ['garage-command']);
  assert.deepEqual(pubs(r).map((p) => [p.topic, p.payload]), [['pop2mqtt/command/garage', 'open']]);
  assert.equal(JSON.stringify(r).includes(GARAGE_TOKEN), false);
});

test('command-mail: forged, untrusted, wrong-token, third-party-DKIM and unknown senders do NOT match', { timeout: 10000 }, async () => {
  const rs = loadRecipe('command-mail.yaml');
  const why: Record<string, string> = {
    'command-forged-lower-ar.eml': 'when.authenticated',
    'command-untrusted-authserv.eml': 'when.authenticated',
    'command-wrong-token.eml': 'when.shared_secret',
    'command-dkim-other-domain.eml': 'when.authenticated',
    'command-unknown-sender.eml': 'when.from',
  };
  for (const [mail, failing] of Object.entries(why)) {
    const r = await run(rs, mail);
    assert.deepEqual(r.matched, [], mail);
    assert.deepEqual(pubs(r), [], mail);
    const cond = r.rules[0]!.conditions.find((c) => c.path === failing)!;
    assert.equal(cond.result, 'failed', `${mail}: ${failing} should be the reason`);
    assert.equal(JSON.stringify(r).includes(GARAGE_TOKEN), false, mail);
  }
});

test('command-mail: without trusted_authserv_ids nothing is authenticated', { timeout: 10000 }, async () => {
  const text = readFileSync(EXAMPLES + 'command-mail.yaml', 'utf8').replaceAll('${GARAGE_TOKEN}', GARAGE_TOKEN);
  const doc = parseYaml(text) as { rules: RuleConfig[] };
  const rs = compileRules(doc.rules, { trustedAuthservIds: [] });
  const r = await explainMessage(readFileSync(EXAMPLES + 'mail/command-open-authenticated.eml'), rs, { now: NOW });
  assert.deepEqual(r.matched, []);
});

// The device recipes are complete configs: each loads through the config loader as it is, and its samples match.
const DEVICE_RECIPES: Array<[file: string, mail: string, rule: string, topics: string[], captures: Record<string, string>]> = [
  ['hikvision.yaml', 'hikvision-motion.eml', 'hikvision-motion', ['pop2mqtt/camera/Driveway/motion'], { camera: 'Driveway', channel: 'D2' }],
  ['dahua.yaml', 'dahua-motion.eml', 'dahua-motion', ['pop2mqtt/camera/dahua/3/Motion Detection'], { event: 'Motion Detection', channel: '3' }],
  ['dahua.yaml', 'dahua-motion-nvr.eml', 'dahua-motion', ['pop2mqtt/camera/dahua/2/Motion Detection'], { event: 'Motion Detection', channel: '2' }],
  ['reolink.yaml', 'reolink-person.eml', 'reolink-alert', ['pop2mqtt/camera/Front Door/Person'], { event: 'Person', camera: 'Front Door' }],
  ['synology-surveillance.yaml', 'synology-ss-motion.eml', 'synology-motion', ['pop2mqtt/camera/Back Yard/motion'], { nas: 'DS918', camera: 'Back Yard' }],
  ['nut-ups.yaml', 'nut-onbatt.eml', 'nut-power', ['pop2mqtt/power/eaton/event', 'pop2mqtt/power/eaton/state'], { event: 'ONBATT', ups: 'eaton' }],
  ['nut-ups.yaml', 'nut-online.eml', 'nut-power', ['pop2mqtt/power/eaton/event', 'pop2mqtt/power/eaton/state'], { event: 'ONLINE', ups: 'eaton' }],
  ['doorbell.yaml', 'doorbell-person.eml', 'doorbell', ['pop2mqtt/doorbell/Front Door'], { event: 'Person', door: 'Front Door' }],
  ['doorbell.yaml', 'doorbell-ding.eml', 'doorbell', ['pop2mqtt/doorbell/Front Door'], { door: 'Front Door' }],
];

for (const [file, mail, rule, topics, captures] of DEVICE_RECIPES) {
  test(`device recipe ${file}: a complete config; ${mail} matches ${rule} with the expected captures and topics`, { timeout: 10000 }, async () => {
    const loaded = parseConfigText(readFileSync(EXAMPLES + file, 'utf8'), { file: EXAMPLES + file, env: { POP3_PASSWORD: 'recipe-test-pw' } });
    assert.equal(loaded.config.mailboxes.length, 1);
    const rs = compileRules(loaded.config.rules, { trustedAuthservIds: loaded.config.trusted_authserv_ids });
    const r = await run(rs, mail);
    assert.deepEqual(r.matched, [rule]);
    assert.deepEqual(pubs(r).map((p) => p.topic), topics);
    const a = alert(r);
    for (const [k, v] of Object.entries(captures)) assert.equal(a[k], v, `capture ${k}`);
    // Every other device sample leaves this recipe's rule alone (no recipe grabs another device's mail).
    for (const [, other] of DEVICE_RECIPES.filter(([f]) => f !== file)) assert.deepEqual((await run(rs, other)).matched, [], `${file} vs ${other}`);
  });
}
