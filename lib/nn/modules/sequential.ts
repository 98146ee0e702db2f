/**
 * nn.Sequential: modules run one after another (torch.nn.Sequential; children named '0', '1',
 * ...). The first gets the call's arguments, each next one the previous one's output; an output
 * that is an object with a tensor `y` (what the recurrent modules return) passes on its `y`.
 */
import { isInstance } from '../../args';
import { RnnkitError } from '../../errors';
import { Tensor } from '../../tensor';
import { Module } from '../module';

function passOn(out: unknown): unknown {
  if (out instanceof Tensor) return out;
  if (out !== null && typeof out === 'object' && (out as { y?: unknown }).y instanceof Tensor) return (out as { y: Tensor }).y;
  return out;
}

/** A chain of modules. */
export class Sequential extends Module {
  /** The modules run in the order given; each is also the property `'0'`, `'1'`, .... Throws ERR_RNNKIT_ARG for none or a non-Module. */
  constructor(...modules: Module[]) {
    super();
    if (modules.length === 0) throw new RnnkitError('ERR_RNNKIT_ARG', 'Sequential needs at least one module');
    modules.forEach((m, k) => {
      if (!isInstance(m, Module)) throw new RnnkitError('ERR_RNNKIT_ARG', `Sequential argument ${k} is not a Module`);
      Object.assign(this, { [String(k)]: m });
    });
  }

  /** The modules, in order. */
  get layers(): Module[] {
    return this.children();
  }

  /** Runs the chain, off the event loop. */
  override async forward(...args: unknown[]): Promise<unknown> {
    const [first, ...rest] = this.layers;
    let out: unknown = await first.forward(...args);
    for (const m of rest) out = await m.forward(passOn(out));
    return out;
  }

  /** Runs the chain on the calling thread (every module needs a forwardSync). */
  override forwardSync(...args: unknown[]): unknown {
    const [first, ...rest] = this.layers;
    let out: unknown = first.forwardSync(...args);
    for (const m of rest) out = m.forwardSync(passOn(out));
    return out;
  }
}
