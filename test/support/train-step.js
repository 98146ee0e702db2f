'use strict';
// One nn training step, as the copy-counting tests run it on CUDA: forward, crossEntropy,
// backward, clipGradNorm (the norm kept as a device tensor), the optimizer step, zeroGrad.
// Returns the loss tensor (not read: reading it is the step's one copy to the host).

function trainingStep(model, opt, input, targets) {
  const { nn } = global.rnnkit;
  const train = require('../../dist/train');
  return async () => {
    const logits = await model.forward(input);
    const loss = await nn.crossEntropy(logits, targets);
    await loss.backward();
    await train.clipGradNorm(model.parameters(), 1, { norm: 'tensor' });
    await opt.step();
    model.zeroGrad();
    return loss;
  };
}

module.exports = { trainingStep };
