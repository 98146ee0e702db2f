#!/usr/bin/env node
'use strict';
// node bench/report.js [results-dir] — rewrites the results section of bench/README.md from the
// JSON files `npm run bench` wrote (bench/results/ by default): the machine, the peers found, the
// shape table, and per family the noise verdict and exactly the tables the run printed, so the
// published tables are never edited by hand. `--check` only says whether README.md is up to date.
const fs = require('fs');
const path = require('path');

const args = process.argv.slice(2);
const check = args.includes('--check');
const defaultDir = () => args.find((a) => !a.startsWith('--')) || process.env.RNNKIT_BENCH_RESULTS || path.join(__dirname, 'results');
const readme = path.join(__dirname, 'README.md');
const START = '<!-- results:start -->';
const END = '<!-- results:end -->';
const ORDER = ['gemm', 'recurrent', 'rmsnorm', 'stepnet', 'train', 'dist'];

const esc = (v) => String(v).replace(/\|/g, '\\|');

function markdownTable(header, rows) {
  // Numeric columns (every cell a number, a ratio or '—') align right, text columns left.
  const numeric = header.map((h, i) => i > 0 && rows.every((r) => /^(—|[-\d.]+(x|%)?( \(.*\))?)$/.test(String(r[i]))));
  const out = [`| ${header.map(esc).join(' | ')} |`, `|${numeric.map((n) => (n ? '---:' : '---')).join('|')}|`];
  for (const r of rows) out.push(`| ${r.map(esc).join(' | ')} |`);
  return out.join('\n');
}

function noiseText(n) {
  if (!n) return 'machine state not recorded';
  const parts = [`load ${n.loadStart.toFixed(1)} → ${n.loadEnd.toFixed(1)}`];
  if (n.otherProcessesShare !== null && n.otherProcessesShare !== undefined) parts.push(`other processes ${(100 * n.otherProcessesShare).toFixed(0)}% of the CPUs`);
  parts.push(`FMA peak ${n.fmaPeakStart.toFixed(0)} → ${n.fmaPeakEnd.toFixed(0)} GFLOP/s` +
    (n.fmaProbes > 2 ? ` (${n.fmaProbes} probes, ${n.fmaPeakWorst.toFixed(0)}–${n.fmaPeakBest.toFixed(0)})` : ''));
  if (n.medianSpread !== null && n.medianSpread !== undefined) parts.push(`min–max spread median ${(100 * n.medianSpread).toFixed(0)}%, worst ${(100 * n.worstSpread).toFixed(0)}%`);
  const verdict = n.verdict === 'quiet' ? '**quiet**' : `**NOISY** (${n.reasons.join('; ')}): absolute figures are unreliable`;
  return `Machine while it ran: ${verdict}; ${parts.join(', ')}, ${n.seconds.toFixed(0)} s.`;
}

function section(dir = defaultDir()) {
  if (!fs.existsSync(dir)) return '_No results yet: run `npm run bench`._';
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'))
    .sort((a, b) => (ORDER.indexOf(a.slice(0, -5)) + 1 || 99) - (ORDER.indexOf(b.slice(0, -5)) + 1 || 99));
  if (!files.length) return '_No results yet: run `npm run bench`._';
  const data = files.map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
  const parts = [];
  // The run-wide facts, from the newest file that has them.
  const withRun = data.filter((d) => d.meta && d.meta.peers).sort((a, b) => String(b.meta.date).localeCompare(String(a.meta.date)))[0];
  if (withRun) {
    const m = withRun.meta;
    parts.push(`Machine: ${m.cpu}, ${m.cpus} CPUs; Node ${m.node}; rnnkit ${m.backend}.`);
    parts.push('\nPeers found by the run:\n');
    for (const line of m.peers) parts.push(`- ${line}`);
    if (m.shapes) {
      const shapes = m.shapes;
      parts.push('\nShapes (bench/shapes.js; the same for every peer):\n');
      parts.push(markdownTable(['family', 'case', 'sizes', 'work per call'], shapes.map((r) => [r.family, r.case, r.sizes, r.work])));
    }
  }
  for (const d of data) {
    const meta = d.meta || {};
    parts.push(`\n### ${meta.family}`);
    parts.push(`Run ${meta.date ? meta.date.replace('T', ' ').slice(0, 16) + ' UTC' : '?'}${meta.quick ? ' (`--quick`)' : ''}. ${noiseText(d.noise)}`);
    if (!d.tables) {
      parts.push('\n_This file predates the table record; rerun `npm run bench`._');
      continue;
    }
    for (const t of d.tables) parts.push(`\n${t.title}\n\n${markdownTable(t.header, t.rows)}`);
    if (d.notes && d.notes.length) parts.push(`\nNotes:\n${d.notes.map((n) => `- ${n}`).join('\n')}`);
  }
  return parts.join('\n');
}

function render(text, dir = defaultDir()) {
  const a = text.indexOf(START);
  const b = text.indexOf(END);
  if (a < 0 || b < a) throw new Error('bench/README.md has no results markers');
  return `${text.slice(0, a + START.length)}\n${section(dir)}\n${text.slice(b)}`;
}

if (require.main === module) {
  const text = fs.readFileSync(readme, 'utf8');
  const next = render(text);
  if (check) {
    process.stdout.write(next === text ? 'bench/README.md is up to date with the results\n' : 'bench/README.md differs from the results: run node bench/report.js\n');
    process.exit(next === text ? 0 : 1);
  }
  fs.writeFileSync(readme, next);
  process.stdout.write(`bench/README.md results updated from ${defaultDir()}\n`);
}

module.exports = { render, section, markdownTable };
