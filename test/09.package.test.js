'use strict';
// The published package: `npm pack`, install the tarball into a fresh project with install
// scripts disabled (so nothing compiles), and load rnnkit from its CPU prebuild alone.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const prebuildDir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);

function npm(args, cwd, env = {}) {
  return execFileSync('npm', args, { cwd, env: { ...process.env, ...env }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

describe('package tarball', function () {
  this.timeout(900000);
  let work;

  before(function () {
    // The GPU machines carry the node binary only (native/tools/gpu-check.sh): no npm, no npx.
    const probe = spawnSync('npm', ['--version'], { encoding: 'utf8' });
    if (probe.error || probe.status !== 0) {
      console.log(`      skipped: npm is not usable here (${probe.error ? probe.error.code : `exit ${probe.status}`}); ` +
        'packing, prebuildify and installing need it');
      this.skip();
    }
    const has = fs.existsSync(prebuildDir) && fs.readdirSync(prebuildDir).some((f) => f.endsWith('.node'));
    if (!has) {
      // A fresh checkout has no prebuild yet: make one (compiles the CPU flavor once more).
      execFileSync('node', [path.join(root, 'native/tools/prebuild.js')], { cwd: root, stdio: 'ignore' });
    }
    work = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-pack-'));
  });

  after(() => {
    if (work) fs.rmSync(work, { recursive: true, force: true });
  });

  it('packs, installs without scripts and loads from the prebuild', () => {
    const packed = JSON.parse(npm(['pack', '--json', '--pack-destination', work], root));
    const files = packed[0].files.map((f) => f.path);
    expect(files).to.include('dist/index.js');
    expect(files).to.include('dist/index.d.ts');
    expect(files.some((f) => f.startsWith(`prebuilds/${process.platform}-${process.arch}/`))).to.equal(true);
    expect(files).to.include('binding.gyp');
    expect(files.some((f) => /^(build|build-cuda|node_modules|native\/dist\/build)\//.test(f))).to.equal(false);
    // The optional collectives addons ship as sources (built at install where Gloo/MPI exist).
    for (const f of ['native/dist/binding.gyp', 'native/dist/build.js', 'native/dist/gloo_engine.cc', 'native/napi/common.cc', 'bin/rnnkit-run.js']) {
      expect(files).to.include(f);
    }

    const app = path.join(work, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    npm(['install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', path.join(work, packed[0].filename)], app);
    const installed = path.join(app, 'node_modules', 'rnnkit');
    expect(fs.existsSync(path.join(installed, 'build'))).to.equal(false);

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
});
