'use strict';
// Loaded into mocha by test-arm64.js: under emulation every test runs several times slower, so
// the limits the suites set for real CPUs (this.timeout(ms)) are stretched by a factor, instead of
// leaving those tests out.
const Mocha = require('mocha');

const SCALE = 20;
const setTimeout = Mocha.Runnable.prototype.timeout;
Mocha.Runnable.prototype.timeout = function timeout(ms) {
  if (arguments.length === 0) return setTimeout.call(this);
  const n = typeof ms === 'string' ? Number.parseFloat(ms) : ms;
  return setTimeout.call(this, Number.isFinite(n) && n > 0 ? n * SCALE : ms);
};
