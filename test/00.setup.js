'use strict';
// Loaded by mocha before every suite: globals shared by the tests.
const chai = require('chai');

global.expect = chai.expect;
global.rnnkit = require('../dist');

// Working memory of the CPU kernels (the native block cache) and reused saved-activation arrays
// come NaN-filled in every test, so a kernel that reads memory it did not write fails the float64
// checks instead of passing on zeroed fresh pages (lib/host-cache.ts).
require('../dist/native').native().setHostCachePoison(true);
require('../dist/host-cache').savedPool.poison = true;

/** True when a CUDA device is usable in this process. */
global.cudaAvailable = () => global.rnnkit.backendInfo().cuda.available;

/**
 * For the hooks and tests of @gpu suites: skips the suite when no CUDA device is usable, with the
 * reason, or fails it when RNNKIT_REQUIRE_GPU=1 (native/tools/gpu-check.sh sets it on GPU
 * machines), so a driver that does not answer there can never read as a pass.
 */
global.skipWithoutGpu = (ctx) => {
  const info = global.rnnkit.backendInfo().cuda;
  if (info.available) return;
  if (process.env.RNNKIT_REQUIRE_GPU === '1') throw new Error(`no usable CUDA device (RNNKIT_REQUIRE_GPU=1): ${info.reason}`);
  ctx.skip();
};

/** Expects fn (sync) to throw an RnnkitError with `code`. */
global.expectCode = (fn, code) => {
  let caught = null;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected ${code} to be thrown`).to.be.an('error');
  expect(caught.name).to.equal('RnnkitError');
  expect(caught.code).to.equal(code);
  return caught;
};

/** Expects a promise to reject with an RnnkitError with `code`. */
global.expectReject = async (promise, code) => {
  let caught = null;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  expect(caught, `expected rejection with ${code}`).to.be.an('error');
  expect(caught.name).to.equal('RnnkitError');
  expect(caught.code).to.equal(code);
  return caught;
};

/** Runs fn with the CPU kernels forced to `isa` ('portable' | 'avx2' | 'avx512' | 'neon'), then restores the path. */
global.withIsa = (isa, fn) => {
  const { native } = require('../dist/native');
  const before = global.rnnkit.backendInfo().isa;
  native().setIsa(isa);
  try {
    return fn();
  } finally {
    native().setIsa(before);
  }
};

/** The ISA paths this CPU can run, portable first. */
global.availableIsas = () => global.rnnkit.backendInfo().availableIsas;
