/**
 * nn.Module: the base class of models and layers (PyTorch's torch.nn.Module).
 *
 * A module finds its children and parameters among its own properties, in the order they were
 * defined: a property holding a Module is a child named after the property; an array of Modules
 * is a list of children named `name.0`, `name.1`, ...; a tensor made a parameter (parameter.ts)
 * is a parameter, and an array of them a parameter list. `namedParameters()` lists a module's own
 * parameters, then each child's under `child.` (depth first), each tensor once (shared ones under
 * their first name), as PyTorch does; `stateDict()` lists every name, shared tensors included.
 *
 * `loadStateDict(record, { strict })` copies values by name into the parameters (in place: the
 * tensors, and any optimizer holding them, stay the same). A shape mismatch is always
 * ERR_RNNKIT_ARG naming every mismatched key; with `strict` (the default) so are missing and
 * unexpected keys. Nothing is written unless the whole record checks.
 */
import { RnnkitError } from '../errors';
import { Device, DeviceSpec, resolveDevice } from '../device';
import { uploadSync } from '../native';
import { Tensor, isTensor } from '../tensor';
import { zeroGrads } from '../train/grads';
import { isParameter, parameter } from './parameter';
import { isInstance, readBoolean, readOptions, readRecord, readShape } from '../args';
import type { MaybePromise } from './maybe';

/** Name → tensor, with PyTorch's names (what `stateDict()` returns and `loadStateDict()` takes). */
export type StateDict = Record<string, Tensor>;

/** A value `loadStateDict` accepts for one name: a tensor, or a safetensors entry. */
export type StateDictValue = Tensor | {
  /** The entry's shape; it must equal the parameter's. */
  shape: readonly number[];
  /** The values, row-major. */
  data: Float32Array;
};

/** Options of `loadStateDict`. */
export interface LoadStateDictOptions {
  /** Refuse missing and unexpected keys (default true). Shape mismatches are always refused. */
  strict?: boolean;
}

/** What `loadStateDict` found besides the keys it loaded. */
export interface LoadStateDictResult {
  /** The module's names the record did not hold (left unchanged). */
  missingKeys: string[];
  /** The record's names the module does not have (ignored). */
  unexpectedKeys: string[];
}

/** Options of `zeroGrad`. */
export interface ZeroGradOptions {
  /** Drop the gradients (`.grad = null`) instead of zeroing them in place. Default false. */
  setToNone?: boolean;
}

type Entry = { kind: 'module'; name: string; value: Module } | { kind: 'param'; name: string; value: Tensor };

function ownEntries(m: Module): Entry[] {
  const out: Entry[] = [];
  for (const [key, v] of Object.entries(m) as Array<[string, unknown]>) {
    if (v instanceof Module) out.push({ kind: 'module', name: key, value: v });
    else if (isParameter(v)) out.push({ kind: 'param', name: key, value: v });
    else if (Array.isArray(v) && v.length > 0) {
      if (v.every((e) => e instanceof Module)) v.forEach((e: Module, k) => out.push({ kind: 'module', name: `${key}.${k}`, value: e }));
      else if (v.every(isParameter)) v.forEach((e: Tensor, k) => out.push({ kind: 'param', name: `${key}.${k}`, value: e }));
    }
  }
  return out;
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, k) => d === b[k]);
const shapeText = (s: readonly number[]): string => `[${s.join(', ')}]`;

/** The base class of every layer and model. Subclasses define `forward` (and may define `forwardSync`). */
export class Module {
  /** Training mode (dropout active); set with `train()` / `eval()`. */
  training = true;

  /** Runs the module. Subclasses define it; it is async and never blocks the event loop. */
  async forward(...args: unknown[]): Promise<unknown> {
    void args;
    throw new RnnkitError('ERR_RNNKIT_ARG', `${this.constructor.name} does not define forward()`);
  }

  /** `forward` on the calling thread, where the subclass defines it. */
  forwardSync(...args: unknown[]): unknown {
    void args;
    throw new RnnkitError('ERR_RNNKIT_ARG', `${this.constructor.name} does not define forwardSync()`);
  }

  /** The direct children, by name, in definition order. */
  namedChildren(): Array<[string, Module]> {
    return ownEntries(this).filter((e) => e.kind === 'module').map((e) => [e.name, e.value as Module]);
  }

  /** The direct children, in definition order. */
  children(): Module[] {
    return this.namedChildren().map(([, m]) => m);
  }

  /** This module and all below it, depth first, each once (`''` names this one). */
  namedModules(): Array<[string, Module]> {
    const out: Array<[string, Module]> = [];
    const seen = new Set<Module>();
    const walk = (m: Module, prefix: string): void => {
      if (seen.has(m)) return;
      seen.add(m);
      out.push([prefix, m]);
      for (const [name, child] of m.namedChildren()) walk(child, prefix ? `${prefix}.${name}` : name);
    };
    walk(this, '');
    return out;
  }

  /** This module and all below it, depth first, each once. */
  modules(): Module[] {
    return this.namedModules().map(([, m]) => m);
  }

  /** Every parameter by its dotted name (each tensor once, under its first name). */
  namedParameters(): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    const seen = new Set<Tensor>();
    for (const [prefix, m] of this.namedModules()) {
      for (const e of ownEntries(m)) {
        if (e.kind !== 'param' || seen.has(e.value)) continue;
        seen.add(e.value);
        out.push([prefix ? `${prefix}.${e.name}` : e.name, e.value]);
      }
    }
    return out;
  }

  /** Every parameter, in `namedParameters()` order: what an optimizer takes. */
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  /** Name → parameter tensor (the tensors themselves, not copies), PyTorch's names. */
  stateDict(): StateDict {
    const out: StateDict = {};
    const walk = (m: Module, prefix: string, path: Set<Module>): void => {
      if (path.has(m)) return;
      path.add(m);
      for (const e of ownEntries(m)) {
        const name = prefix + e.name;
        if (e.kind === 'param') out[name] = e.value;
        else walk(e.value, `${name}.`, path);
      }
      path.delete(m);
    };
    walk(this, '', new Set());
    return out;
  }

  /** Copies values by name into the parameters (see the contract at the top of this file). */
  loadStateDict(record: Record<string, StateDictValue>, options?: LoadStateDictOptions): LoadStateDictResult {
    const o = readOptions(options, ['strict'], 'loadStateDict options');
    const strict = readBoolean(o.strict, 'strict', true);
    if (record === null || typeof record !== 'object') throw new RnnkitError('ERR_RNNKIT_ARG', 'loadStateDict needs a record of name -> Tensor');
    record = readRecord(record, 'the state dict') as Record<string, StateDictValue>;
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !Object.prototype.hasOwnProperty.call(record, k));
    const unexpectedKeys = Object.keys(record).filter((k) => !Object.prototype.hasOwnProperty.call(own, k));
    const problems: string[] = [];
    const values: Array<[Tensor, Float32Array]> = [];
    for (const [name, t] of Object.entries(own)) {
      if (!Object.prototype.hasOwnProperty.call(record, name)) continue;
      const v = record[name];
      let shape: readonly number[];
      let data: Float32Array | null;
      const entry = isTensor(v) || v === null || typeof v !== 'object' ? null : readRecord(v, `record.${name}`);
      if (isTensor(v)) {
        v.assertLive(`record.${name}`);
        shape = v.shape;
        data = v.device === 'cpu' ? v.data : null;
      } else if (entry !== null && Array.isArray(entry.shape) && isInstance(entry.data, Float32Array)) {
        shape = readShape(entry.shape, `record.${name}.shape`).dims;
        data = entry.data;
      } else {
        throw new RnnkitError('ERR_RNNKIT_ARG', `loadStateDict: ${name} must be a Tensor or { shape, data: Float32Array }`);
      }
      if (!sameShape(shape, t.shape)) {
        problems.push(`${name} is ${shapeText(shape)} in the record, ${shapeText(t.shape)} here`);
        continue;
      }
      values.push([t, data ?? (v as Tensor).readSync()]);
    }
    if (strict && missingKeys.length) problems.unshift(`missing keys ${missingKeys.join(', ')}`);
    if (strict && unexpectedKeys.length) problems.unshift(`unexpected keys ${unexpectedKeys.join(', ')}`);
    if (problems.length) throw new RnnkitError('ERR_RNNKIT_ARG', `loadStateDict: ${problems.join('; ')}`);
    for (const [t, data] of values) {
      if (data.length !== t.size) throw new RnnkitError('ERR_RNNKIT_SHAPE', `loadStateDict: ${t.size} values expected, got ${data.length}`);
      if (t.device === 'cpu') t.data.set(data);
      else uploadSync(t.deviceBuffer, data);
      t.bumpVersion();
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode on this module and all below it (dropout on); returns this. */
  train(mode = true): this {
    if (typeof mode !== 'boolean') throw new RnnkitError('ERR_RNNKIT_ARG', 'train(mode) takes a boolean');
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Sets evaluation mode on this module and all below it (dropout off); returns this. */
  eval(): this {
    return this.train(false);
  }

  /**
   * Moves every parameter to `device`; returns this. Parameters on another device are replaced by
   * new tensors (as in PyTorch, create the optimizer after moving the model).
   */
  to(device: DeviceSpec): this {
    const target = resolveDevice(device);
    for (const m of this.modules()) m.moveTo(target);
    return this;
  }

  /** Zeroes every parameter's `.grad` in place (or drops them with `{ setToNone: true }`). */
  zeroGrad(options?: ZeroGradOptions): void {
    zeroGrads(this.parameters(), options);
  }

  /**
   * Moves this module's own parameters (not its children's) to `device`. Modules that hold
   * native state besides their parameters override it.
   */
  protected moveTo(device: Device): void {
    const moved = (t: Tensor): Tensor => {
      if (t.device === device) return t;
      const p = parameter(t.detach().to(device));
      p.requiresGrad = t.requiresGrad;
      return p;
    };
    for (const [key, v] of Object.entries(this) as Array<[string, unknown]>) {
      if (isParameter(v)) Object.assign(this, { [key]: moved(v) });
      else if (Array.isArray(v) && v.length > 0 && v.every(isParameter)) Object.assign(this, { [key]: v.map(moved) });
    }
  }
}

/**
 * A module of one tensor in and one tensor out (Linear, RMSNorm, Dropout): the subclass writes
 * `run(x, async)` once; `forward` (off the event loop) and `forwardSync` (on the calling thread)
 * both come from it.
 */
export abstract class TensorModule extends Module {
  /** The module applied to x, off the event loop. */
  override async forward(x: Tensor): Promise<Tensor> {
    return this.run(x, true);
  }

  /** `forward` on the calling thread. */
  override forwardSync(x: Tensor): Tensor {
    return this.run(x, false) as Tensor;
  }

  /** The one body of forward and forwardSync: a promise when async, the tensor otherwise. */
  protected abstract run(x: Tensor, async: boolean): MaybePromise<Tensor>;
}
