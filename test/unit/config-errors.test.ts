// Config errors: every kind names the key path (a.b[2].c) and the YAML line, and the message lists them one per line.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, formatIssue, loadConfig } from '../../src/config/index.js';
import { issueAt, lineOf, minimalYaml, parseError } from '../support/config-yaml.js';

const T = { timeout: 10_000 };

describe('config errors: path and line', () => {
  it('invalid cron expression', T, () => {
    const text = minimalYaml('    schedule: "61 * * * *"\n');
    const err = parseError(text);
    const issue = issueAt(err, 'mailboxes[0].schedule');
    assert.equal(issue.line, lineOf(text, 'schedule:'));
    assert.match(issue.message, /invalid cron expression/);
    assert.match(issue.message, /minute/);
    assert.ok(err.message.includes(`mailboxes[0].schedule: invalid cron expression`));
    assert.ok(err.message.includes(`(line ${issue.line})`));
  });

  it('a cron expression with 7 fields', T, () => {
    const text = minimalYaml('    schedule: "* * * * * * *"\n');
    assert.equal(issueAt(parseError(text), 'mailboxes[0].schedule').line, lineOf(text, 'schedule:'));
  });

  it('bad broker URL: wrong scheme and garbage', T, () => {
    const text = minimalYaml().replace('mqtt://127.0.0.1:1883', 'ftp://127.0.0.1');
    const issue = issueAt(parseError(text), 'mqtt.url');
    assert.equal(issue.line, lineOf(text, 'url:'));
    assert.match(issue.message, /scheme "ftp"/);
    const garbage = minimalYaml().replace('mqtt://127.0.0.1:1883', 'not a url');
    assert.match(issueAt(parseError(garbage), 'mqtt.url').message, /invalid URL/);
  });

  it('unknown key with a did-you-mean suggestion', T, () => {
    const text = minimalYaml('    pasword: x\n    keepAlive: 3\n', 'mqtt_x: 1\n');
    const err = parseError(text);
    const pw = issueAt(err, 'mailboxes[0].pasword');
    assert.equal(pw.line, lineOf(text, 'pasword:'));
    assert.match(pw.message, /unknown key \(did you mean "password"\?\)/);
    assert.match(issueAt(err, 'mqtt_x').message, /did you mean "mqtt"/);
    assert.equal(issueAt(err, 'mqtt_x').line, 1);
    // Not close to anything: the allowed keys are listed instead.
    assert.match(issueAt(err, 'mailboxes[0].keepAlive').message, /unknown key \(allowed: id, name, host/);
  });

  it('camelCase spelling of a snake_case key is suggested', T, () => {
    const text = minimalYaml().replace('mqtt:\n', 'mqtt:\n  baseTopic: x\n');
    assert.match(issueAt(parseError(text), 'mqtt.baseTopic').message, /did you mean "base_topic"/);
  });

  it('unknown key inside a rule condition gets a suggestion from the rule schema', T, () => {
    const text = minimalYaml('', '') + 'rules:\n  - name: r\n    when:\n      subjekt: { contains: x }\n';
    const issue = issueAt(parseError(text), 'rules[0].when.subjekt');
    assert.equal(issue.line, lineOf(text, 'subjekt'));
    assert.match(issue.message, /did you mean "subject"/);
  });

  it('duplicate mailbox ids', T, () => {
    const text = minimalYaml('  - id: home\n    host: h2\n    username: bob\n    password: x\n');
    const issue = issueAt(parseError(text), 'mailboxes[1].id');
    assert.equal(issue.line, text.split('\n').lastIndexOf('  - id: home') + 1);
    assert.match(issue.message, /duplicate mailbox id "home" \(also mailboxes\[0\]\)/);
  });

  it('duplicate rule names', T, () => {
    const text = minimalYaml() + 'rules:\n  - name: a\n  - name: a\n';
    const issue = issueAt(parseError(text), 'rules[1].name');
    assert.equal(issue.line, text.split('\n').lastIndexOf('  - name: a') + 1);
  });

  it('unknown rule name in mailbox.rules', T, () => {
    const text = minimalYaml('    rules:\n      - known\n      - nope\n') + 'rules:\n  - name: known\n';
    const issue = issueAt(parseError(text), 'mailboxes[0].rules[1]');
    assert.equal(issue.line, lineOf(text, '- nope'));
    assert.match(issue.message, /unknown rule "nope" \(rules: known\)/);
  });

  it('missing environment variable names the path and line, and is listed for every use', T, () => {
    const text = minimalYaml('    name: ${NAME_VAR}\n');
    const err = parseError(text, { env: {} });
    const issue = issueAt(err, 'mailboxes[0].password');
    assert.equal(issue.line, lineOf(text, 'password:'));
    assert.equal(issue.message, 'environment variable POP3_PASSWORD is not set');
    assert.equal(issueAt(err, 'mailboxes[0].name').message, 'environment variable NAME_VAR is not set');
  });

  it('malformed ${...} references are errors', T, () => {
    assert.match(issueAt(parseError(minimalYaml('    name: "${1BAD}"\n')), 'mailboxes[0].name').message, /invalid reference/);
    assert.match(issueAt(parseError(minimalYaml('    name: "abc${OPEN"\n')), 'mailboxes[0].name').message, /unterminated/);
  });

  it('a missing required key points at its parent', T, () => {
    const text = minimalYaml().replace('    username: alice\n', '');
    const issue = issueAt(parseError(text), 'mailboxes[0].username');
    assert.equal(issue.line, lineOf(text, '- id: home'));
    assert.match(issue.message, /missing required key/);
    const noMqtt = 'mailboxes:\n  - id: a\n    host: h\n    username: u\n    password: p\n';
    const top = issueAt(parseError(noMqtt), 'mqtt');
    assert.match(top.message, /missing required key/);
  });

  it('host is required unless provider is set; a password unless oauth', T, () => {
    const text = minimalYaml().replace('    host: 127.0.0.1\n', '').replace('    password: ${POP3_PASSWORD}\n', '');
    const err = parseError(text);
    assert.match(issueAt(err, 'mailboxes[0].host').message, /required \(or set provider\)/);
    assert.match(issueAt(err, 'mailboxes[0].password').message, /required/);
  });

  it('xoauth2 needs oauth credentials', T, () => {
    const text = minimalYaml('    auth: xoauth2\n    oauth:\n      token_url: https://idp.example/token\n');
    const err = parseError(text);
    assert.equal(issueAt(err, 'mailboxes[0].oauth.client_id').line, lineOf(text, 'oauth:'));
    issueAt(err, 'mailboxes[0].oauth.refresh_token');
  });

  it('wrong types and enum values', T, () => {
    const text = minimalYaml('    port: "995"\n    tls: ssl\n    keep: yes-please\n');
    const err = parseError(text);
    assert.equal(issueAt(err, 'mailboxes[0].port').line, lineOf(text, 'port:'));
    assert.match(issueAt(err, 'mailboxes[0].port').message, /expected number/);
    assert.match(issueAt(err, 'mailboxes[0].tls').message, /implicit/);
    issueAt(err, 'mailboxes[0].keep');
  });

  it('bad durations and sizes', T, () => {
    const text = minimalYaml('    timeouts: { connect: 5 parsecs }\n    max_message_size: 3 bananas\n');
    const err = parseError(text);
    assert.equal(issueAt(err, 'mailboxes[0].timeouts.connect').line, lineOf(text, 'timeouts:'));
    assert.match(issueAt(err, 'mailboxes[0].timeouts.connect').message, /invalid duration/);
    assert.match(issueAt(err, 'mailboxes[0].max_message_size').message, /invalid size/);
    const wrongType = minimalYaml('    timeouts: { connect: true }\n');
    assert.match(issueAt(parseError(wrongType), 'mailboxes[0].timeouts.connect').message, /expected a duration/);
  });

  it('invalid mailbox id and base topic', T, () => {
    const text = minimalYaml().replace('id: home', 'id: "home box"').replace('mqtt:\n', 'mqtt:\n  base_topic: "a/#"\n');
    const err = parseError(text);
    assert.match(issueAt(err, 'mailboxes[0].id').message, /A-Za-z0-9_-/);
    assert.match(issueAt(err, 'mqtt.base_topic').message, /wildcards/);
    const slash = minimalYaml().replace('mqtt:\n', 'mqtt:\n  base_topic: "/a"\n');
    assert.match(issueAt(parseError(slash), 'mqtt.base_topic').message, /start or end with/);
  });

  it('no mailboxes', T, () => {
    const err = parseError('mqtt: { url: "mqtt://h" }\nmailboxes: []\n');
    assert.equal(issueAt(err, 'mailboxes').line, 2);
  });

  it('tls: none with a cleartext mechanism is refused without allow_insecure_auth', T, () => {
    const text = minimalYaml('    tls: none\n    auth: user\n');
    const issue = issueAt(parseError(text), 'mailboxes[0].auth');
    assert.equal(issue.line, lineOf(text, 'auth: user'));
    assert.match(issue.message, /cleartext/);
  });

  it('password and password_file together', T, () => {
    const text = minimalYaml('    password_file: ./pw\n');
    const issue = issueAt(parseError(text), 'mailboxes[0].password_file');
    assert.equal(issue.line, lineOf(text, 'password_file'));
    assert.match(issue.message, /either password or password_file/);
    const mqtt = minimalYaml().replace('mqtt:\n', 'mqtt:\n  password: a\n  password_file: ./b\n');
    issueAt(parseError(mqtt), 'mqtt.password_file');
  });

  it('YAML syntax errors give line and column', T, () => {
    const text = 'mqtt:\n  url: "mqtt://h\nmailboxes: []\n';
    const err = parseError(text);
    assert.ok(err.issues.length >= 1 && err.issues.length <= 4, err.message);
    const first = err.issues[0]!;
    assert.equal(first.path, '');
    assert.ok(first.line! >= 2 && first.line! <= 4, `line ${first.line}`);
    assert.equal(typeof first.column, 'number');
    assert.match(err.message, /YAML syntax error: .*\(line \d+, column \d+\)/);
  });

  it('duplicate YAML keys and unknown tags are errors with lines', T, () => {
    const dup = minimalYaml('    host: again\n');
    const err = parseError(dup);
    assert.match(err.message, /unique/i);
    assert.equal(err.issues[0]!.line, lineOf(dup, 'host: again'));
    const tag = minimalYaml('    name: !include other.yaml\n');
    const tagErr = parseError(tag);
    assert.match(tagErr.message, /!include/);
    assert.equal(tagErr.issues[0]!.line, lineOf(tag, '!include'));
  });

  it('an empty file and a non-map file', T, () => {
    assert.match(parseError('').message, /config is empty/);
    assert.match(parseError('# only a comment\n').message, /config is empty/);
    assert.match(parseError('- a\n- b\n').message, /must be a map/);
  });

  it('reports several problems at once, one per line', T, () => {
    const text = minimalYaml('    tls: bogus\n    port: 0\n').replace('mqtt://127.0.0.1:1883', 'http://x');
    const err = parseError(text);
    assert.ok(err.issues.length >= 3, err.message);
    assert.equal(err.message.split('\n').length, err.issues.length);
    assert.deepEqual(err.message.split('\n'), err.issues.map(formatIssue));
  });

  it('loadConfig on a missing file throws ConfigError naming the file', T, async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'p2m-cfg-'));
    try {
      await assert.rejects(loadConfig(path.join(dir, 'nope.yaml')), (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, /cannot read config file .*nope\.yaml: ENOENT/);
        return true;
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('config errors: rule schema issues keep their path and line', () => {
  it('an invalid regular expression in a rule', T, () => {
    const text = minimalYaml() + 'rules:\n  - name: x\n    when:\n      subject:\n        regex: "("\n';
    const err = parseError(text);
    const issue = issueAt(err, 'rules[0].when.subject.regex');
    assert.equal(issue.line, lineOf(text, 'regex: "("'));
    assert.match(issue.message, /regex|regular expression/i);
  });

  it('the same in flow style: {name: x, when: {subject: {regex: "("}}}', T, () => {
    const text = minimalYaml() + 'rules:\n  - {name: x, when: {subject: {regex: "("}}}\n';
    const issue = issueAt(parseError(text), 'rules[0].when.subject.regex');
    assert.equal(issue.line, lineOf(text, '{name: x'));
  });
});
