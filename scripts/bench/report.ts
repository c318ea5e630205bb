// Turns measured bench figures into the Markdown comparison table (pop2mqtt vs fetchmail, ratio, target, met) — formatting only, no measuring.

export type Unit = 'B' | 'ms' | 'KiB' | 'x' | 'n';

export interface Target {
  /** The pop2mqtt value must be <= max (or < max when strict). */
  max: number;
  strict?: boolean;
  /** How the target reads in the table, e.g. "≤ 1.01 × bound". */
  text: string;
}

export interface Row {
  workload: string;
  metric: string;
  unit: Unit;
  pop2mqtt: number | null;
  fetchmail: number | null;
  target?: Target;
  /** The two columns measure different things (e.g. latency to MQTT vs run time): print no ratio. */
  noRatio?: boolean;
}

export interface CheckedTarget {
  workload: string;
  metric: string;
  target: string;
  value: number | null;
  met: boolean;
}

const group = (n: number) => Math.round(n).toLocaleString('en-US');

/** A value with its unit, readable: exact bytes below 10 kB, then kB/MB with 3 significant digits. */
export function formatValue(v: number | null, unit: Unit): string {
  if (v === null || Number.isNaN(v)) return '–';
  switch (unit) {
    case 'B':
      if (Math.abs(v) < 10_000) return `${group(v)} B`;
      if (Math.abs(v) < 1_000_000) return `${(v / 1000).toFixed(1)} kB`;
      return `${(v / 1e6).toFixed(2)} MB`;
    case 'KiB':
      return Math.abs(v) < 1024 ? `${Math.round(v)} KiB` : `${(v / 1024).toFixed(1)} MiB`;
    case 'ms':
      return v < 10_000 ? `${group(v)} ms` : `${(v / 1000).toFixed(1)} s`;
    case 'x':
      return `${v.toFixed(4)} ×`;
    case 'n':
      return group(v);
  }
}

/** fetchmail / pop2mqtt, e.g. "75.2×"; blank when either side is missing or zero. */
export function formatRatio(p: number | null, f: number | null): string {
  if (p === null || f === null || !Number.isFinite(p) || !Number.isFinite(f) || p <= 0 || f <= 0) return '';
  const r = f / p;
  if (r >= 100) return `${Math.round(r)}×`;
  return r >= 1 ? `${r.toFixed(r >= 10 ? 1 : 2)}×` : `${r.toFixed(3)}×`;
}

export function isMet(t: Target, v: number | null): boolean {
  if (v === null || Number.isNaN(v)) return false;
  return t.strict ? v < t.max : v <= t.max;
}

export function checkTargets(rows: Row[]): CheckedTarget[] {
  return rows
    .filter((r) => r.target)
    .map((r) => ({ workload: r.workload, metric: r.metric, target: r.target!.text, value: r.pop2mqtt, met: isMet(r.target!, r.pop2mqtt) }));
}

const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The Markdown table; the workload name is printed once per group of rows. */
export function markdownTable(rows: Row[]): string {
  const out = [
    '| Workload | Metric | pop2mqtt | fetchmail | fetchmail ÷ pop2mqtt | Target (pop2mqtt) | Met |',
    '|---|---|---:|---:|---:|---|:-:|',
  ];
  let last = '';
  for (const r of rows) {
    const w = r.workload === last ? '' : r.workload;
    last = r.workload;
    const met = r.target ? (isMet(r.target, r.pop2mqtt) ? 'yes' : '**no**') : '';
    out.push(
      `| ${cell(w)} | ${cell(r.metric)} | ${formatValue(r.pop2mqtt, r.unit)} | ${formatValue(r.fetchmail, r.unit)} | ${r.unit === 'x' || r.noRatio ? '' : formatRatio(r.pop2mqtt, r.fetchmail)} | ${cell(r.target?.text ?? '')} | ${met} |`,
    );
  }
  return out.join('\n');
}
