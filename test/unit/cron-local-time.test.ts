// Proves that src/cron-local-time.ts gives node-cron the same local-time parts and UTC offsets as the Intl.DateTimeFormat it replaces in the bundle, in several time zones (DST, half-hour and 45-minute offsets).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ZONES = ['UTC', 'Europe/London', 'Europe/Berlin', 'America/Los_Angeles', 'America/St_Johns', 'Asia/Kolkata', 'Australia/Lord_Howe', 'Pacific/Chatham'];

/** In a process with TZ=zone: every date of 2026 at a 37-minute step, plus each second around every offset change, through both. */
function mismatches(zone: string): { checked: number; bad: string[] } {
  const mod = fileURLToPath(new URL('../../src/cron-local-time.ts', import.meta.url));
  const script = `
    import { localParts, localOffset } from ${JSON.stringify(mod)};
    // node-cron's own formatters (node_modules/node-cron/dist/_shared.cjs), without a time zone
    const parts = new Intl.DateTimeFormat('en-US', { year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', weekday: 'short', hour12: false });
    const offset = new Intl.DateTimeFormat('en-US', { timeZone: undefined, timeZoneName: 'shortOffset' });
    // node-cron reads 'GMT' and 'GMT+0' alike (both 'Z'): the offsets are compared as minutes east of UTC
    const minutes = (v) => { const m = /^GMT(?:([+-])(\\d{1,2})(?::(\\d{2}))?)?$/.exec(v); return m ? (m[1] === '-' ? -1 : 1) * ((Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) : 'unparsed ' + v; };
    const norm = (ps) => JSON.stringify(Object.fromEntries(ps.filter((p) => p.type !== 'literal').map((p) => [p.type, p.type === 'hour' && p.value === '24' ? '00' : p.value]).sort()));
    const dates = [];
    for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += 37 * 60_000) dates.push(new Date(t));
    for (let t = Date.UTC(2026, 0, 1); t < Date.UTC(2027, 0, 1); t += 3_600_000) {
      if (new Date(t).getTimezoneOffset() !== new Date(t + 3_600_000).getTimezoneOffset()) {
        for (let s = -5; s <= 3_605; s += 1) dates.push(new Date(t + s * 1000));
      }
    }
    const bad = [];
    for (const d of dates) {
      const a = norm(parts.formatToParts(d)), b = norm(localParts.formatToParts(d));
      if (a !== b) bad.push(d.toISOString() + ' parts ' + a + ' vs ' + b);
      const oa = offset.formatToParts(d).find((p) => p.type === 'timeZoneName').value, ob = localOffset.formatToParts(d)[0].value;
      if (minutes(oa) !== minutes(ob) || typeof minutes(ob) !== 'number') bad.push(d.toISOString() + ' offset ' + oa + ' vs ' + ob);
    }
    process.stdout.write(JSON.stringify({ checked: dates.length, bad: bad.slice(0, 5) }));
  `;
  const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, TZ: zone, NODE_OPTIONS: '' },
    timeout: 120_000,
    encoding: 'utf8',
  });
  return JSON.parse(out) as { checked: number; bad: string[] };
}

for (const zone of ZONES) {
  test(`same parts and offsets as Intl.DateTimeFormat in ${zone}`, { timeout: 180_000 }, () => {
    const r = mismatches(zone);
    assert.ok(r.checked > 14_000, `checked only ${r.checked} dates`);
    assert.deepEqual(r.bad, []);
  });
}
