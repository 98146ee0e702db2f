#!/usr/bin/env node
'use strict';
// The public-API fuzz (test/fuzz/api.js) as a program:
//
//   npm run fuzz -- [--calls N] [--seed S] [--threads N] [--only REGEX] [--trace-from K]
//
// N calls (default 100000) from seed S (default: a fresh one, printed), each a target of the table
// with valid arguments broken by hostile values; async results are awaited in batches under a
// watchdog. Then the library must still compute correct results (test/fuzz/verify.js) and hold
// no native object beyond what live JavaScript objects own. Ends with one JSON line `FUZZ {...}`
// (calls, seconds, calls/s, failures, per-target outcomes) and exits 1 on any failure. Under
// test/93.api-fuzz.test.js it runs as a child process that reports progress over IPC; alone it
// prints a progress line to stderr every 50,000 calls.
//
// RNNKIT_MAX_ALLOC_BYTES is set to 64M unless given: big but permitted allocations stay cheap, and
// the limit itself is hit all the time. The compute pool runs --threads threads (default 1: the
// calls are tiny, and waking a pool per call costs more than the call on a busy machine; the
// concurrency stress of 91.concurrency covers the pool).
const { types } = require('util');

if (process.env.RNNKIT_MAX_ALLOC_BYTES === undefined) process.env.RNNKIT_MAX_ALLOC_BYTES = '64M';
const rk = require('../..');
const { makeRandom, freshSeed } = require('../reference/random');
const { makeContext, targets } = require('./api');
const { HostileError, throwingTraps } = require('./hostile');
const { verify } = require('./verify');

function parseArgs(argv) {
  const o = { calls: 100000, seed: null, threads: 1, only: null, traceFrom: Infinity };
  for (let k = 0; k < argv.length; k++) {
    const value = () => {
      if (k + 1 >= argv.length) throw new Error(`${argv[k]} needs a value`);
      return argv[++k];
    };
    switch (argv[k]) {
      case '--calls': o.calls = Number(value()); break;
      case '--seed': o.seed = Number(value()) >>> 0; break;
      case '--threads': o.threads = Number(value()); break;
      case '--only': o.only = new RegExp(value()); break;
      case '--trace-from': o.traceFrom = Number(value()); break;
      default: throw new Error(`unknown argument ${argv[k]} (--calls N --seed S --only REGEX --trace-from K)`);
    }
  }
  if (!Number.isSafeInteger(o.calls) || o.calls < 1) throw new Error('--calls must be a positive integer');
  return o;
}

const isPlain = (v) => {
  if (typeof v !== 'object' || v === null || types.isProxy(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/** `v` broken somewhere: replaced, or (objects and arrays) changed one level down, up to depth 2. */
function mutateValue(v, ctx, depth) {
  const { rng, h, pick } = ctx;
  if (depth > 2 || rng.next() < 0.3 || types.isProxy(v)) return h.value();
  if (Array.isArray(v) && v.length <= 64) {
    const a = v.slice();
    const r = rng.next();
    if (a.length > 0 && r < 0.5) {
      const k = rng.int(0, a.length - 1);
      a[k] = mutateValue(a[k], ctx, depth + 1);
    } else if (a.length > 0 && r < 0.65) {
      a.splice(rng.int(0, a.length - 1), 1);
    } else if (r < 0.85) {
      a.push(h.value());
    } else {
      return new Proxy(a, rng.next() < 0.5 ? {} : throwingTraps);
    }
    return a;
  }
  if (isPlain(v)) {
    // Copied by descriptors: a getter added by an earlier mutation must not run here.
    const descriptors = Object.getOwnPropertyDescriptors(v);
    for (const d of Object.values(descriptors)) {
      d.configurable = true;
      if ('value' in d) d.writable = true;
    }
    const o = Object.defineProperties(Object.create(Object.getPrototypeOf(v)), descriptors);
    const keys = Object.keys(o);
    const r = rng.next();
    const plainKeys = keys.filter((k) => 'value' in Object.getOwnPropertyDescriptor(o, k));
    if (plainKeys.length > 0 && r < 0.45) {
      const k = pick(plainKeys);
      o[k] = mutateValue(o[k], ctx, depth + 1);
    } else if (keys.length > 0 && r < 0.6) {
      delete o[pick(keys)];
    } else if (r < 0.72) {
      const k = keys.length > 0 ? pick(keys) : 'size';
      Object.defineProperty(o, pick([`${k}s`, k.toUpperCase(), 'epsilon', 'hidden_size', 'bogus']),
        { value: h.value(), enumerable: true, writable: true, configurable: true });
    } else if (keys.length > 0 && r < 0.86) {
      Object.defineProperty(o, pick(keys), { enumerable: true, configurable: true, get: () => { throw new HostileError('getter'); } });
    } else {
      return new Proxy(o, rng.next() < 0.5 ? {} : throwingTraps);
    }
    return o;
  }
  return h.value();
}

/** The arguments with 1–3 of them broken (never the receiver of a method target). */
function mutateArgs(args, target, ctx) {
  const out = args.slice();
  const first = target.receiver ? 1 : 0;
  for (let n = ctx.rng.int(1, 3); n > 0; n--) {
    const i = ctx.rng.int(first, out.length);
    out[i] = mutateValue(out[i], ctx, 0);
  }
  return out;
}

/** null when `err` keeps the contract, else what is wrong with it. */
function breach(err, target) {
  if (err instanceof rk.RnnkitError && typeof err.code === 'string' && /^ERR_RNNKIT_[A-Z]+$/.test(err.code)) return null;
  if (target.userCode && err instanceof HostileError) return null;
  const name = err && err.constructor ? err.constructor.name : typeof err;
  return `${name}: ${err && err.message}\n${err && err.stack ? err.stack.split('\n').slice(1, 6).join('\n') : ''}`;
}

function describeArgs(args) {
  return args.map((a) => {
    if (types.isProxy(a)) return 'Proxy';
    try {
      if (a instanceof rk.Tensor) return a.toString();
      const s = JSON.stringify(a, (k, v) => (typeof v === 'bigint' ? `${v}n` : Array.isArray(v) && v.length > 64 ? `array(${v.length})` : v));
      return s === undefined ? typeof a : s.length > 120 ? `${s.slice(0, 120)}…` : s;
    } catch {
      return typeof a;
    }
  }).join(', ');
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const seed = opts.seed === null ? freshSeed() : opts.seed;
  const rng = makeRandom(seed);
  rk.setNumThreads(opts.threads);
  const baseline = rk.backendInfo().liveObjects;
  let ctx = makeContext(rk, rng);
  ctx.threads = opts.threads;
  // Paths the fuzz breaks become relative names ('str', 'cuda', ...): files the checkpoint and
  // safetensors targets write under them must land in the fuzz's own folder, not the caller's.
  const cwd = process.cwd();
  process.chdir(ctx.dir);
  const table = targets().filter((t) => !opts.only || opts.only.test(t.name));
  const all = table.filter((t) => t.needs(ctx));
  const unavailable = table.filter((t) => !t.needs(ctx)).map((t) => t.name);
  if (all.length === 0) throw new Error('no target matches --only');
  const stats = new Map(all.map((t) => [t.name, { calls: 0, ok: 0, ms: 0, codes: {} }]));
  const failures = [];
  const fail = (target, i, what, args) => {
    if (failures.length < 20) failures.push({ target: target.name, call: i, what, args });
  };
  const unexpected = (what) => (err) => failures.push({ target: '(process)', call: -1, what: `${what}: ${err && err.stack}` });
  process.on('unhandledRejection', unexpected('unhandled rejection'));
  process.on('uncaughtException', unexpected('uncaught exception'));
  const record = (target, i, args, outcome) => {
    const s = stats.get(target.name);
    if (outcome.ok) s.ok++;
    else {
      const bad = breach(outcome.err, target);
      if (bad) fail(target, i, bad, describeArgs(args));
      else if (outcome.err instanceof rk.RnnkitError) s.codes[outcome.err.code] = (s.codes[outcome.err.code] || 0) + 1;
    }
  };
  const weights = all.map((t) => t.weight);
  const total = weights.reduce((a, b) => a + b, 0);
  const choose = () => {
    let u = rng.next() * total;
    for (let k = 0; k < all.length; k++) if ((u -= weights[k]) < 0) return all[k];
    return all[all.length - 1];
  };
  let pending = [];
  const drain = async () => {
    const batch = pending;
    pending = [];
    let timer;
    const hang = new Promise((resolve) => { timer = setTimeout(() => resolve('hang'), 60000); });
    const done = await Promise.race([Promise.all(batch.map((p) => p.promise)), hang]);
    clearTimeout(timer);
    if (done === 'hang') {
      const names = [...new Set(batch.map((p) => p.name))].join(', ');
      failures.push({ target: names, call: -1, what: 'async calls still pending after 60 s (a hang)' });
      throw new Error('hang');
    }
  };
  const started = process.hrtime.bigint();
  for (let i = 0; i < opts.calls && failures.length < 20; i++) {
    // Every 2,000 calls (at the top: a call that throws continues past the bottom of the loop).
    if (i > 0 && i % 2000 === 0) {
      await drain();
      if (global.gc) global.gc();
      if (process.send) process.send({ calls: i });
      else if (i % 50000 === 0) {
        const s = Number(process.hrtime.bigint() - started) / 1e9;
        process.stderr.write(`fuzz: ${i} calls in ${s.toFixed(0)} s, ${failures.length} failure(s) so far\n`);
      }
    }
    const target = choose();
    const stat = stats.get(target.name);
    stat.calls++;
    const t0 = process.hrtime.bigint();
    let args;
    try {
      args = target.args(ctx);
    } catch (err) {
      fail(target, i, `the fuzz's own argument generator failed: ${err && err.stack}`, '');
      break;
    }
    if (rng.next() < 0.85) args = mutateArgs(args, target, ctx);
    if (i >= opts.traceFrom) process.stderr.write(`call ${i}: ${target.name}(${describeArgs(args)})\n`);
    let result;
    try {
      result = target.call(ctx, args);
    } catch (err) {
      record(target, i, args, { ok: false, err });
      continue;
    } finally {
      stat.ms += Number(process.hrtime.bigint() - t0) / 1e6;
    }
    let thenable = false;
    try {
      thenable = result instanceof Promise;
    } catch {
      thenable = false; // a value of the caller's handed back (a builder returns its names)
    }
    if (thenable) {
      pending.push({ name: target.name, promise: result.then(() => record(target, i, args, { ok: true }), (err) => record(target, i, args, { ok: false, err })) });
      if (pending.length >= 64) await drain();
    } else {
      record(target, i, args, { ok: true });
    }
  }
  try {
    await drain();
  } catch {
    // reported in failures
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  rk.setCheckFinite(false);
  rk.setNumThreads(opts.threads);
  if (failures.length === 0) {
    try {
      await verify(rk, rng);
    } catch (err) {
      failures.push({ target: '(after the storm)', call: -1, what: err.message });
    }
  }
  if (global.gc) {
    await new Promise((resolve) => setImmediate(resolve));
    global.gc();
  }
  const live = rk.backendInfo().liveObjects;
  if (live.asyncJobs !== 0) failures.push({ target: '(after the storm)', call: -1, what: `${live.asyncJobs} async jobs still held` });
  const silent = [...stats].filter(([name, s]) => s.calls >= 20 && s.ok === 0 && !all.find((t) => t.name === name).noSuccess).map(([n]) => n);
  if (opts.calls >= 20 * all.length && silent.length > 0) {
    failures.push({ target: silent.join(', '), call: -1, what: 'never succeeded: the fuzz does not reach past the first check' });
  }
  process.chdir(cwd);
  ctx.close();
  // With the fuzz's objects dropped and collected, the addon holds what it held before the storm.
  ctx = null;
  let after = rk.backendInfo().liveObjects;
  const settled = () => Object.keys(baseline).every((k) => after[k] === baseline[k]);
  for (let round = 0; global.gc && round < 20 && !settled(); round++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
    global.gc();
    after = rk.backendInfo().liveObjects;
  }
  if (global.gc && !settled()) {
    failures.push({ target: '(after the storm)', call: -1,
      what: `native objects left over once every object of the fuzz was dropped: ${JSON.stringify(after)}, before the storm ${JSON.stringify(baseline)}` });
  }
  const summary = {
    seed, calls: opts.calls, seconds: Number(seconds.toFixed(2)), callsPerSecond: Math.round(opts.calls / seconds),
    targets: all.length, unavailable, failures, live, liveAfterDrop: after, perTarget: Object.fromEntries(stats),
  };
  for (const f of failures) process.stderr.write(`FAILED ${f.target} (call ${f.call}, seed ${seed}): ${f.what}\n${f.args ? `  args: ${f.args}\n` : ''}`);
  if (unavailable.length) process.stdout.write(`not run here (no collectives backend built): ${unavailable.join(', ')}\n`);
  process.stdout.write(`${opts.calls} calls over ${all.length} targets in ${seconds.toFixed(1)} s ` +
    `(${summary.callsPerSecond} calls/s), seed ${seed}: ${failures.length === 0 ? 'no failure' : `${failures.length} failure(s)`}\n`);
  const slowest = [...stats].sort((a, b) => b[1].ms - a[1].ms).slice(0, 8).map(([n, st]) => `${n} ${Math.round(st.ms)} ms`);
  process.stdout.write(`slowest targets (sync time, arguments included): ${slowest.join(', ')}\n`);
  process.stdout.write(`FUZZ ${JSON.stringify(summary)}\n`);
  process.exitCode = failures.length === 0 ? 0 : 1;
}

main().catch((err) => {
  process.stderr.write(`fuzz: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
