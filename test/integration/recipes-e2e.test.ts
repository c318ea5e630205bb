// The device recipes end to end: their sample mails through real Dovecot, the real CLI and real Mosquitto publish
// exactly what `test-rule` (explainMessage) predicts; forged command mails publish nothing and are not deleted.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { startLab, minimalConfig, runCli, ROOT, USER, type Lab } from '../support/lab.js';
import { subscribe } from '../support/mqtt-subscriber.js';
import { compileRules, type RuleConfig } from '../../src/rules/index.js';
import { explainMessage } from '../../src/alerts/explain.js';

const EXAMPLES = path.join(ROOT, 'config', 'examples');
const TOKEN = 'T0k3n-Garage-2025';
const MAILS = readdirSync(path.join(EXAMPLES, 'mail')).filter((f) => f.endsWith('.eml')).sort();
const RECIPES = readdirSync(EXAMPLES).filter((f) => f.endsWith('.yaml')).sort();

let lab: Lab;
before(async () => {
  lab = await startLab();
  lab.env.GARAGE_TOKEN = TOKEN;
});
after(async () => {
  await lab?.stop();
});

async function emptyMailbox(): Promise<void> {
  const md = lab.dovecot.maildir(USER);
  for (const sub of ['new', 'cur']) for (const f of await readdir(path.join(md, sub))) await rm(path.join(md, sub, f));
}

for (const recipe of RECIPES) {
  test(`recipe ${recipe}: every sample mail through Dovecot publishes exactly what test-rule predicts`, { timeout: 90_000 }, async () => {
    await emptyMailbox();
    const doc = parseYaml(readFileSync(path.join(EXAMPLES, recipe), 'utf8')) as { rules: RuleConfig[]; trusted_authserv_ids?: string[] };
    const base = parseYaml(minimalConfig(lab, { existing: 'process', keep: true, stateDir: `./state-${recipe}` })) as Record<string, unknown>;
    const cfg = await lab.writeConfig(stringifyYaml({ ...base, trusted_authserv_ids: doc.trusted_authserv_ids ?? [], rules: doc.rules }), `recipe-${recipe}`);

    // The prediction, from the same rules (token substituted as the loader does).
    const rules = JSON.parse(JSON.stringify(doc.rules).replaceAll('${GARAGE_TOKEN}', TOKEN)) as RuleConfig[];
    const rs = compileRules(rules, { trustedAuthservIds: doc.trusted_authserv_ids ?? [] });
    const expected: string[] = [];
    for (const m of MAILS) {
      const res = await explainMessage(readFileSync(path.join(EXAMPLES, 'mail', m)), rs, { mailbox: 'home', baseTopic: 'pop2mqtt' });
      for (const rule of res.rules) if (res.matched.includes(rule.rule)) for (const p of rule.publications) expected.push(p.topic);
    }

    const sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/#']);
    try {
      await lab.dovecot.deliverMany(USER, MAILS.map((m) => readFileSync(path.join(EXAMPLES, 'mail', m))));
      const r = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr + r.stdout, new RegExp(TOKEN));
      // Live messages only: retained ones from an earlier recipe arrive at subscribe time flagged retain.
      const isAlert = (m: { topic: string; retain: boolean }) => !m.retain && !/^pop2mqtt\/(bridge\/|home\/status$)/.test(m.topic);
      if (expected.length) await sub.waitForCount(expected.length, 10_000, isAlert);
      await new Promise((res) => setTimeout(res, 300));
      const got = sub.messages.filter(isAlert).map((m) => m.topic).sort();
      assert.deepEqual(got, [...expected].sort());
      assert.ok(!sub.messages.some((m) => m.payload.includes(TOKEN)), 'the shared secret never reaches MQTT');
    } finally {
      await sub.close();
    }
  });
}

test('command mail: only the authenticated sample with the token publishes; forged ones stay on the server', { timeout: 90_000 }, async () => {
  await emptyMailbox();
  const doc = parseYaml(readFileSync(path.join(EXAMPLES, 'command-mail.yaml'), 'utf8')) as { rules: RuleConfig[]; trusted_authserv_ids: string[] };
  const base = parseYaml(minimalConfig(lab, { existing: 'process', keep: true, stateDir: './state-command' })) as Record<string, unknown>;
  const cfg = await lab.writeConfig(stringifyYaml({ ...base, trusted_authserv_ids: doc.trusted_authserv_ids, rules: doc.rules }), 'command.yaml');
  const commands = MAILS.filter((m) => m.startsWith('command-'));
  const sub = await subscribe(lab.mosquitto.url, ['pop2mqtt/command/#']);
  try {
    // Command mails act only when dated within max_age (1 h): send the samples as if written just now.
    const fresh = (b: Buffer) => Buffer.from(b.toString('utf8').replace(/^Date: .*$/m, `Date: ${new Date().toUTCString()}`), 'utf8');
    await lab.dovecot.deliverMany(USER, commands.map((m) => fresh(readFileSync(path.join(EXAMPLES, 'mail', m)))));
    const r = await runCli(['once', '--config', cfg], { env: lab.env, cwd: lab.dir, timeoutMs: 60_000 });
    assert.equal(r.code, 0, r.stderr);
    const [cmd] = await sub.waitForCount(1, 10_000);
    assert.equal(cmd!.topic, 'pop2mqtt/command/garage');
    assert.equal(cmd!.text, 'open');
    await new Promise((res) => setTimeout(res, 300));
    assert.equal(sub.messages.length, 1, 'forged, untrusted, wrong-token and unknown-sender mails publish nothing');
    // `then: delete` consumed the genuine command; every other sample is still on the server.
    assert.equal((await lab.dovecot.messageFiles(USER)).length, commands.length - 1);
  } finally {
    await sub.close();
  }
});

// The complete-config recipes, through the real CLI as a user runs them: `check` accepts each as it is, `test-rule` matches its samples.
const COMPLETE: Array<[recipe: string, mails: string[]]> = [
  ['hikvision.yaml', ['hikvision-motion.eml']],
  ['dahua.yaml', ['dahua-motion.eml', 'dahua-motion-nvr.eml']],
  ['reolink.yaml', ['reolink-person.eml']],
  ['synology-surveillance.yaml', ['synology-ss-motion.eml']],
  ['nut-ups.yaml', ['nut-onbatt.eml', 'nut-online.eml']],
  ['doorbell.yaml', ['doorbell-person.eml', 'doorbell-ding.eml']],
];
test('device recipes: check accepts each as it is; test-rule matches every sample mail (exit 0)', { timeout: 240_000 }, async () => {
  for (const [recipe, mails] of COMPLETE) {
    const cfg = path.join(EXAMPLES, recipe);
    const c = await runCli(['check', '--config', cfg], { env: { ...process.env, POP3_PASSWORD: 'recipe-pw' }, timeoutMs: 60_000 });
    assert.equal(c.code, 0, `${recipe}: ${c.stderr}`);
    assert.match(c.stdout, /OK \(1 mailbox, 1 rule\)/);
    const t = await runCli(['test-rule', '--config', cfg, ...mails.map((m) => path.join(EXAMPLES, 'mail', m))], { timeoutMs: 60_000 });
    assert.equal(t.code, 0, `${recipe}: ${t.stdout}\n${t.stderr}`);
    assert.equal(t.stdout.match(/^matched: /gm)?.length, mails.length, t.stdout);
  }
});
