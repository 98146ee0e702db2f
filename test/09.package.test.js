'use strict';
// The published package: `npm pack`, then the tarball's contents (what users need: the compiled
// API, the prebuilds, the sources a source build needs; no tests, benches, GPU checkers, source
// maps or TypeScript sources), an install into an empty project with install scripts disabled (so
// nothing compiles), loading rnnkit from its CPU prebuild alone, every `exports` entry and every
// specifier the docs use, and every runnable README example (test/readme-examples.js) run there.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { readmeExamples, documentedSpecifiers } = require('./readme-examples');

const root = path.join(__dirname, '..');
const pkg = require('../package.json');
const prebuildDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const hasNodeFile = (dir) => fs.existsSync(dir) && fs.readdirSync(dir).some((f) => f.endsWith('.node'));

// True when the host's prebuild is missing or older than a native source or header.
function prebuildStale() {
  if (!hasNodeFile(prebuildDir)) return true;
  const built = Math.min(...fs.readdirSync(prebuildDir).filter((f) => f.endsWith('.node'))
    .map((f) => fs.statSync(path.join(prebuildDir, f)).mtimeMs));
  const dirs = ['native/kernels', 'native/napi', 'cuda'].map((d) => path.join(root, d));
  return dirs.some((d) => fs.readdirSync(d).some((f) => fs.statSync(path.join(d, f)).mtimeMs > built));
}
// Build and test tooling of this repository, never wanted by a user of the package.
const NOT_FOR_USERS = [
  /^(test|bench|examples|lib|build[^/]*|node_modules|\.ci)\//, /\.map$/, /\.tgz$/,
  /^native\/tools\/(test_|bench_|gpu)/, /^native\/tools\/(test-|prebuild|arm64-)/, /^native\/tools\/.*\.supp$/,
  /^docs\/api\//,
];

function npm(args, cwd) {
  return execFileSync('npm', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('package tarball', function () {
  this.timeout(900000);
  let work;
  let app;
  let files;

  before(function () {
    // The GPU machines carry the node binary only (native/tools/gpu-check.sh): no npm, no npx.
    const probe = spawnSync('npm', ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      console.log(`      skipped: npm is not usable here (${probe.error ? probe.error.code : `exit ${probe.status}`}); ` +
        'packing, prebuildify and installing need it');
      this.skip();
    }
    if (prebuildStale()) {
      // A fresh checkout has no prebuild yet, a working one may have an old one: make it (compiles
      // the CPU flavor once more).
      execFileSync('node', [path.join(root, 'native/tools/prebuild.js'), '--arch', process.arch], { cwd: root, stdio: 'ignore' });
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-pack-'));
    const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', work], root))[0];
    files = packed.files.map((f) => f.path);
    app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, packed.filename)], app);
  });

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('holds the compiled API, the prebuilds and the sources of a source build, and nothing else', () => {
    for (const f of ['dist/index.js', 'dist/index.d.ts', 'binding.gyp', 'native/tools/sources.js', 'LICENSE', 'README.md']) {
      expect(files, f).to.include(f);
    }
    // Every prebuild made here ships (CI makes linux-x64 and linux-arm64).
    for (const dir of fs.readdirSync(path.join(root, 'prebuilds'))) {
      if (hasNodeFile(path.join(root, 'prebuilds', dir))) {
        expect(files.some((f) => f.startsWith(`prebuilds/${dir}/`) && f.endsWith('.node')), dir).to.equal(true);
      }
    }
    // The CPU flavor's sources, as binding.gyp lists them, so an install without a matching
    // prebuild can compile.
    const sources = execFileSync('node', [path.join(root, 'native/tools/sources.js'), 'cpu'], { encoding: 'utf8' }).trim().split('\n');
    for (const s of sources) expect(files, s).to.include(s);
    expect(files.filter((f) => NOT_FOR_USERS.some((re) => re.test(f)))).to.deep.equal([]);
    // dist/ holds what tsc makes of lib/ today, nothing left over from removed sources.
    for (const f of files.filter((p) => /^dist\/.*\.js$/.test(p))) {
      expect(fs.existsSync(path.join(root, f.replace(/^dist\//, 'lib/').replace(/\.js$/, '.ts'))), `${f} has no source in lib/`).to.equal(true);
    }
    for (const target of Object.values(pkg.bin || {})) expect(files, target).to.include(path.posix.normalize(target));
    expect(files.some((f) => /^native\/dist\/build\//.test(f))).to.equal(false);
    // The optional collectives addons ship as sources (built at install where Gloo/MPI exist).
    for (const f of ['native/dist/binding.gyp', 'native/dist/build.js', 'native/dist/gloo_engine.cc', 'native/napi/common.cc', 'bin/rnnkit-run.js']) {
      expect(files).to.include(f);
    }
  });

  it('installs without scripts and loads from the prebuild', () => {
    expect(fs.existsSync(path.join(app, 'node_modules', 'rnnkit', 'build'))).to.equal(false);
    const script = [
      "const r = require('rnnkit');",
      'const info = r.backendInfo();',
      "const c = r.matmulSync(r.tensor([1, 2, 3, 4], [2, 2]), r.tensor([1, 0, 0, 1], [2, 2]));",
      'const dist = r.distributed.backends();',
      'console.log(JSON.stringify({ path: info.addonPath, flavor: info.flavor, c: Array.from(c.data), dist }));',
    ].join('\n');
    const out = execFileSync(process.execPath, ['-e', script], {
      cwd: app, encoding: 'utf8', env: { ...process.env, PREBUILDS_ONLY: '1', RNNKIT_DEVICE: 'cpu' },
    });
    const result = JSON.parse(out.trim().split('\n').pop());
    expect(result.flavor).to.equal('cpu');
    expect(result.path).to.contain(path.join('node_modules', 'rnnkit', 'prebuilds'));
    expect(result.c).to.deep.equal([1, 2, 3, 4]);
    // Installed without scripts, no collectives addon was built: rnnkit loads and says so.
    for (const b of result.dist) {
      expect(b.available).to.equal(false);
      expect(b.reason).to.match(/is not built: .*npm run build:dist/);
    }
  });

  it('resolves every exports entry and every specifier the README and docs use, from CommonJS and ESM', () => {
    const docs = [path.join(root, 'README.md'), ...fs.readdirSync(path.join(root, 'docs'))
      .filter((f) => f.endsWith('.md')).map((f) => path.join(root, 'docs', f))];
    const specifiers = new Set(documentedSpecifiers(docs, pkg.name));
    for (const key of Object.keys(pkg.exports)) specifiers.add(path.posix.join(pkg.name, key));
    expect(specifiers.has(pkg.name)).to.equal(true);
    for (const spec of specifiers) {
      const cjs = spawnSync(process.execPath, ['-e', `require.resolve(${JSON.stringify(spec)})`], { cwd: app, encoding: 'utf8' });
      expect(cjs.status, `require.resolve('${spec}'): ${cjs.stderr}`).to.equal(0);
      const esm = spawnSync(process.execPath, ['--input-type=module', '-e', `import.meta.resolve(${JSON.stringify(spec)})`], { cwd: app, encoding: 'utf8' });
      expect(esm.status, `import.meta.resolve('${spec}'): ${esm.stderr}`).to.equal(0);
    }
    // Named ES imports of the main entry point (Node reads them from the CommonJS exports).
    const named = spawnSync(process.execPath, ['--input-type=module', '-e',
      `import { tensor, Recurrent } from '${pkg.name}'; if (typeof tensor !== 'function' || typeof Recurrent !== 'function') process.exit(1);`],
    { cwd: app, encoding: 'utf8', env: { ...process.env, PREBUILDS_ONLY: '1' } });
    expect(named.status, named.stderr).to.equal(0);
  });

  describe('README examples, run from the installed package', () => {
    for (const ex of readmeExamples()) {
      it(`README.md line ${ex.line} (${ex.heading}) runs and prints no warning`, () => {
        const file = path.join(app, `readme-line-${ex.line}.${ex.module}`);
        fs.writeFileSync(file, ex.source);
        const r = spawnSync(process.execPath, [file], {
          cwd: app, encoding: 'utf8', timeout: 120000, env: { ...process.env, PREBUILDS_ONLY: '1' },
        });
        expect(r.status, `exit ${r.status} ${r.signal || ''}\n${r.stderr}`).to.equal(0);
        expect(r.stderr, 'stderr').to.equal('');
      });
    }
  });
});
