'use strict';
// Closeness, once for every test: got (float32 from a kernel) against want (float64 from a
// reference), element by element against an allowed error, failing on the worst element with its
// index, both values, the error, the allowance, and the seed that replays the inputs. A NaN or an
// infinity in `got` (an unwritten or overflowed element: outputs are poisoned with NaN) always
// fails, as does a length mismatch.
//
// expectClose(got, want, { rel, abs = 0, bound, slack, scale = 'element', floor, what, seed })
//   scale 'element' (default): |got[i] − want[i]| <= abs + rel·|want[i]| + slack[i]
//   bound given:               |got[i] − want[i]| <= abs + rel·bound[i] (bound = the sum of the
//                              magnitudes that make up want[i], a float32 forward-error bound that
//                              cancellation cannot tighten)
//   scale 'max':               |got[i] − want[i]| <= abs + rel·max(floor, max|want|) (1 when both are 0)
//   scale 'norm':              ||got − want|| / ||want|| <= rel (||got|| itself when want is all zeros)

function fail(message, o) {
  const where = o.what === undefined ? '' : `${o.what}: `;
  const seed = o.seed === undefined ? '' : `; seed ${o.seed}`;
  throw new Error(`${where}${message}${seed}`);
}

/** The element with the largest |got − want| / allowed (index −1 for empty arrays). */
function worstElement(got, want, allowedAt) {
  let worst = { index: -1, ratio: 0, err: 0, allowed: 0 };
  for (let i = 0; i < want.length; i++) {
    const err = Math.abs(got[i] - want[i]);
    const allowed = allowedAt(i);
    const ratio = err === 0 ? 0 : err / allowed;
    if (!(ratio <= worst.ratio)) worst = { index: i, ratio, err, allowed };
  }
  return worst;
}

function normError(got, want) {
  let diff = 0;
  let norm = 0;
  for (let i = 0; i < want.length; i++) {
    diff += (got[i] - want[i]) ** 2;
    norm += want[i] ** 2;
  }
  return norm === 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
}

/** The allowed error at element i for the options `o` (see the top of this file). */
function allowance(want, o) {
  const abs = o.abs || 0;
  const scale = o.bound ? 'bound' : o.scale || 'element';
  if (scale === 'bound') return (i) => abs + o.rel * o.bound[i];
  if (scale === 'element') {
    return o.slack ? (i) => abs + o.rel * Math.abs(want[i]) + o.slack[i] : (i) => abs + o.rel * Math.abs(want[i]);
  }
  if (scale === 'max') {
    let s = o.floor || 0;
    for (let i = 0; i < want.length; i++) s = Math.max(s, Math.abs(want[i]));
    if (s === 0) s = 1;
    return () => abs + o.rel * s;
  }
  throw new Error(`expectClose: unknown scale '${scale}'`);
}

/**
 * How close got is to want under `o`, without throwing: { ratio, index, err, allowed } of the worst
 * element (ratio <= 1 passes; NaN when got has a NaN), or for scale 'norm' the norm error over rel.
 */
function closeness(got, want, o) {
  if (!o || typeof o.rel !== 'number') throw new Error('expectClose needs { rel } (and optionally abs, bound, slack, scale, floor, what, seed)');
  if (o.scale === 'norm') {
    const err = normError(got, want);
    return { ...worstElement(got, want, () => 1), ratio: err / o.rel, norm: err };
  }
  return worstElement(got, want, allowance(want, o));
}

function expectClose(got, want, o) {
  const c = closeness(got, want, o);
  if (got.length !== want.length) fail(`${got.length} values, reference ${want.length}`, o);
  for (let i = 0; i < got.length; i++) {
    if (!Number.isFinite(got[i])) fail(`element ${i} is ${got[i]} (NaN or infinity leaked), reference ${want[i]}`, o);
  }
  if (o.scale === 'norm') {
    if (!(c.norm <= o.rel)) fail(`relative error ${c.norm} > ${o.rel} (worst element ${c.index} is ${got[c.index]}, reference ${want[c.index]})`, o);
    return c;
  }
  if (!(c.ratio <= 1)) {
    fail(`element ${c.index} is ${got[c.index]}, reference ${want[c.index]} (error ${c.err.toExponential(3)}, allowed ${c.allowed.toExponential(3)})`, o);
  }
  return c;
}

module.exports = { expectClose, closeness, normError };
