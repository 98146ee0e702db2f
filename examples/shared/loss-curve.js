'use strict';
// The examples' loss curve as a standalone SVG: the training loss of every step as a line and the
// held-out evaluations as dots at the step they were taken ({ step, loss }, step counted from 1).

function lossCurveSvg(trainLosses, evals, title, { trainLabel = 'train loss', evalLabel = 'held-out loss' } = {}) {
  const W = 720, H = 360, L = 56, R = 16, T = 36, Bm = 40;
  const xs = trainLosses.length;
  const all = trainLosses.concat(evals.map((e) => e.loss)).filter(Number.isFinite);
  const hi = Math.max(...all);
  const lo = Math.min(...all);
  const sx = (i) => L + ((W - L - R) * i) / Math.max(1, xs - 1);
  const sy = (v) => T + ((H - T - Bm) * (hi - v)) / Math.max(1e-9, hi - lo);
  const pts = trainLosses.map((v, i) => `${sx(i).toFixed(1)},${sy(v).toFixed(1)}`).join(' ');
  const text = (s) => s.replace(/[<>&]/g, '');
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${L}" y="22" font-size="14">${text(title)}</text>`,
    `<line x1="${L}" y1="${H - Bm}" x2="${W - R}" y2="${H - Bm}" stroke="#888"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${H - Bm}" stroke="#888"/>`,
  ];
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    parts.push(`<text x="${L - 6}" y="${sy(v) + 4}" text-anchor="end">${v.toFixed(2)}</text>`);
  }
  parts.push(`<text x="${(W + L) / 2}" y="${H - 10}" text-anchor="middle">step (of ${xs})</text>`);
  parts.push(`<polyline fill="none" stroke="#3b7dd8" stroke-width="1.5" points="${pts}"/>`);
  for (const e of evals) parts.push(`<circle cx="${sx(e.step - 1).toFixed(1)}" cy="${sy(e.loss).toFixed(1)}" r="4" fill="#d8563b"/>`);
  parts.push(`<text x="${W - R}" y="${T}" text-anchor="end" fill="#3b7dd8">${text(trainLabel)}</text>`);
  parts.push(`<text x="${W - R}" y="${T + 16}" text-anchor="end" fill="#d8563b">${text(evalLabel)}</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

module.exports = { lossCurveSvg };
