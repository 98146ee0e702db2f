'use strict';
// Shared benchmark machinery: warm-up and repeated timing with medians and spread, the machine
// limits measured in the same run, tables with ratios, and JSON + SVG results under
// bench/results/ (ignored by git). Benchmarks never fail the build: a missing peer is reported
// with the line that installs it.
const fs = require('fs');
const os = require('os');
const path = require('path');

const resultsDir = path.join(__dirname, 'results');

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Times fn (sync or async) after `warmup` calls: `repeats` samples, each at least `minMs` long
 * (calls are batched when one is shorter). Returns per-call milliseconds.
 */
async function measure(fn, { warmup = 2, repeats = 7, minMs = 20 } = {}) {
  for (let i = 0; i < warmup; i++) await fn();
  let batch = 1;
  const t0 = nowMs();
  await fn();
  const one = nowMs() - t0;
  if (one < minMs) batch = Math.max(1, Math.ceil(minMs / Math.max(one, 1e-3)));
  const samples = [];
  for (let r = 0; r < repeats; r++) {
    const s = nowMs();
    for (let b = 0; b < batch; b++) await fn();
    samples.push((nowMs() - s) / batch);
  }
  return summarize(samples);
}

function summarize(samples) {
  const sorted = samples.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  const min = sorted[0];
  const max = sorted[sorted.length - 1];
  return { median, min, max, spread: median > 0 ? (max - min) / median : 0, samples };
}

/** FMA peak (GFLOP/s) and copy bandwidth (GB/s, read + write) measured now, with `threads`. */
function limits(binding, threads) {
  const fma = binding.fmaPeak(threads);
  const copy = binding.copyBandwidth(256 << 20, threads, 5);
  return { threads, fmaPeakGflops: fma, copyGBs: copy, load: os.loadavg()[0], cpus: os.cpus().length };
}

/** A plain-text table; columns: [{ key, title, fmt? }]. */
function formatTable(title, columns, rows) {
  const cells = rows.map((r) => columns.map((c) => {
    const v = r[c.key];
    if (v === undefined || v === null) return '—';
    return c.fmt ? c.fmt(v, r) : String(v);
  }));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i].length)));
  const line = (vals) => vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  const out = [`\n${title}`, line(columns.map((c) => c.title)), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of cells) out.push(line(row));
  return out.join('\n');
}

function printTable(title, columns, rows) {
  process.stdout.write(formatTable(title, columns, rows) + '\n');
}

const fmt = {
  ms: (v) => v.toFixed(v < 10 ? 3 : 1),
  num: (v) => v.toFixed(1),
  ratio: (v) => `${v.toFixed(2)}x`,
  pct: (v) => `${(100 * v).toFixed(0)}%`,
  mb: (v) => (v / 1e6).toFixed(1),
};

/** A horizontal bar chart (SVG) of one metric per row, grouped by series. */
function svgBarChart(title, rows, { label, series, unit }) {
  const bars = [];
  for (const r of rows) for (const s of series) if (typeof r[s.key] === 'number') bars.push({ l: `${r[label]} ${s.title}`, v: r[s.key] });
  const max = Math.max(1e-9, ...bars.map((b) => b.v));
  const h = 22;
  const width = 900;
  const left = 330;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${40 + bars.length * h}" font-family="sans-serif" font-size="12">`,
    `<text x="10" y="20" font-size="15">${escapeXml(title)} (${escapeXml(unit)})</text>`];
  bars.forEach((b, i) => {
    const y = 32 + i * h;
    const w = ((width - left - 80) * b.v) / max;
    parts.push(`<text x="10" y="${y + 14}">${escapeXml(b.l)}</text>`);
    parts.push(`<rect x="${left}" y="${y + 2}" width="${w.toFixed(1)}" height="${h - 6}" fill="#3b7dd8"/>`);
    parts.push(`<text x="${(left + w + 5).toFixed(1)}" y="${y + 14}">${b.v.toFixed(2)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function escapeXml(s) {
  return String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' }[c]));
}

/** Writes bench/results/<family>.json (and .svg when a chart is given). Returns the JSON path. */
function save(family, payload, chart) {
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${family}.json`);
  const meta = { family, date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0] && os.cpus()[0].model, load: os.loadavg() };
  fs.writeFileSync(file, JSON.stringify({ meta, ...payload }, null, 2));
  if (chart) fs.writeFileSync(path.join(resultsDir, `${family}.svg`), svgBarChart(chart.title, chart.rows, chart));
  return file;
}

/** A note when the machine is busy enough to distort timings. */
function noiseWarning() {
  const load = os.loadavg()[0];
  const cpus = os.cpus().length;
  return load > cpus * 0.5 ? `note: load average ${load.toFixed(1)} on ${cpus} CPUs; timings are noisy` : null;
}

module.exports = { measure, summarize, limits, printTable, formatTable, fmt, save, svgBarChart, noiseWarning, resultsDir };
