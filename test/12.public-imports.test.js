'use strict';
// What users read and copy uses only the public entry point: examples/, docs/ and README.md
// import nothing of rnnkit but `rnnkit` (in-repo `require('..')` / `require('../..')`, which is
// the package root), never dist/ or lib/ modules; the rest are Node built-ins and the examples'
// own helpers. And lib/ has no `as unknown as` cast (the typed native boundary, issue 15).
const fs = require('fs');
const path = require('path');
const { builtinModules } = require('module');

const root = path.join(__dirname, '..');

// docs/api/ is typedoc's generated output (npm run docs; git-ignored), not prose a user copies from.
const GENERATED = new Set([path.join(root, 'docs', 'api')]);

function filesUnder(dir, test) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (GENERATED.has(p)) continue;
    if (e.isDirectory()) out.push(...filesUnder(p, test));
    else if (test(e.name)) out.push(p);
  }
  return out;
}

/** Every module specifier of require('...') / import ... from '...' / import('...') in `text`. */
function specifiers(text) {
  const out = [];
  const re = /require\(\s*(['"`])([^'"`]+)\1\s*\)|\bfrom\s+(['"])([^'"]+)\3|\bimport\(\s*(['"])([^'"]+)\5\s*\)/g;
  for (let m = re.exec(text); m; m = re.exec(text)) out.push(m[2] || m[4] || m[6]);
  return out;
}

describe('public imports: examples/, docs/ and README.md use only the rnnkit entry point', function () {
  const sources = [
    ...filesUnder(path.join(root, 'examples'), (n) => /\.(c|m)?js$/.test(n)),
    ...filesUnder(path.join(root, 'docs'), (n) => /\.(md|js)$/.test(n)),
    path.join(root, 'README.md'),
  ];

  it('finds the sources it checks', function () {
    expect(sources.length).to.be.above(5);
    expect(sources.some((f) => f.includes(`${path.sep}examples${path.sep}`))).to.equal(true);
  });

  it('every specifier is rnnkit, the package root, a Node built-in or an example\'s own helper', function () {
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const bad = [];
    for (const file of sources) {
      for (const spec of specifiers(fs.readFileSync(file, 'utf8'))) {
        if (spec === 'rnnkit' || builtins.has(spec)) continue;
        if (spec.startsWith('.')) {
          const target = path.resolve(path.dirname(file), spec);
          if (target === root) continue; // require('..') from examples/: the package root
          if (file.endsWith('.js') && target.startsWith(path.join(root, 'examples') + path.sep)) continue;
        }
        bad.push(`${path.relative(root, file)}: ${spec}`);
      }
    }
    expect(bad, bad.join('\n')).to.deep.equal([]);
  });

  it('lib/ has no `as unknown as` cast', function () {
    const hits = filesUnder(path.join(root, 'lib'), (n) => n.endsWith('.ts'))
      .filter((f) => fs.readFileSync(f, 'utf8').includes('as unknown as'))
      .map((f) => path.relative(root, f));
    expect(hits).to.deep.equal([]);
  });
});
