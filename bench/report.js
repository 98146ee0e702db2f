#!/usr/bin/env node
'use strict';
// node bench/report.js — rewrites the results section of bench/README.md from the JSON files in
// bench/results/ (one table per family: every row and column as saved, numbers to 3 significant
// digits, with the run's date, CPU and load), so the published tables are never edited by hand.
const fs = require('fs');
const path = require('path');

const dir = path.join(__dirname, 'results');
const readme = path.join(__dirname, 'README.md');
const START = '<!-- results:start -->';
const END = '<!-- results:end -->';

function cell(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return String(v);
    if (v !== 0 && (Math.abs(v) >= 1e6 || Math.abs(v) < 1e-3)) return v.toExponential(2);
    return Number(v.toPrecision(3)).toString();
  }
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v).replace(/\|/g, '\\|');
}

function table(rows) {
  const keys = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!keys.includes(k)) keys.push(k);
  const out = [`| ${keys.join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`];
  for (const r of rows) out.push(`| ${keys.map((k) => cell(r[k])).join(' | ')} |`);
  return out.join('\n');
}

function section() {
  if (!fs.existsSync(dir)) return '_No results yet: run `npm run bench`._';
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  if (!files.length) return '_No results yet: run `npm run bench`._';
  const parts = [];
  for (const f of files) {
    const data = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
    const meta = data.meta || {};
    const load = Array.isArray(meta.load) ? meta.load[0].toFixed(1) : '?';
    parts.push(`### ${meta.family || f.slice(0, -5)}`);
    parts.push(`Run ${meta.date || '?'} on ${meta.cpu || '?'} (load average ${load}), Node ${meta.node || '?'}.`);
    if (data.limits) parts.push(`Machine limits measured in the same run: \`${JSON.stringify(data.limits)}\``);
    for (const [key, value] of Object.entries(data)) {
      if (Array.isArray(value) && value.length && typeof value[0] === 'object') parts.push(`\n${key}:\n\n${table(value)}`);
    }
    parts.push('');
  }
  return parts.join('\n');
}

const text = fs.readFileSync(readme, 'utf8');
const a = text.indexOf(START);
const b = text.indexOf(END);
if (a < 0 || b < a) {
  process.stderr.write('bench/README.md has no results markers\n');
  process.exit(1);
}
fs.writeFileSync(readme, `${text.slice(0, a + START.length)}\n${section()}\n${text.slice(b)}`);
process.stdout.write('bench/README.md results updated\n');
