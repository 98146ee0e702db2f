#!/usr/bin/env node
// npm run docs [-- --lenient]: the HTML API reference (docs/api/, ignored by git) from the TypeScript
// declarations and their doc comments, with TypeDoc (typedoc.json), warnings treated as errors.
// One page per module: the modules are the files lib/index.ts re-exports from (read from its
// export statements, so a new module appears by being exported there); the README, with its
// examples, is the front page, docs/*.md are pages of their own, and each module's page links the
// README sections and examples/ programs that use it (examples are copied under media/). Links to
// README sections come out of TypeDoc as `../#section`; they are rewritten to `../index.html#section`
// so that the pages also work opened from disk. Then a check that the reference documents exactly the public API:
// a name a module exports for the library's own use, not re-exported by lib/index.ts, must be
// marked @internal. Any TypeDoc warning (an undocumented exported name, a type a public signature
// uses that is not exported, a broken link) or finding fails the build: CI runs it this way.
// --lenient reports them without failing (to look at the pages while writing comments).
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const ts = require('typescript');

const root = path.resolve(__dirname, '..', '..');
const index = path.join(root, 'lib', 'index.ts');
const out = path.join(root, 'docs', 'api');

function fail(message) {
  process.stderr.write(`docs: ${message}\n`);
  process.exit(1);
}

// The modules: every relative file lib/index.ts re-exports from, in its order. A module exported
// as a namespace (`export * as nn from './nn'`) is public as a whole.
function moduleFiles() {
  const source = ts.createSourceFile(index, fs.readFileSync(index, 'utf8'), ts.ScriptTarget.Latest, true);
  const files = [];
  for (const st of source.statements) {
    if (!ts.isExportDeclaration(st) || !st.moduleSpecifier) continue;
    const spec = st.moduleSpecifier.text;
    const base = path.resolve(path.dirname(index), spec);
    const file = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
    if (!file) fail(`cannot find the module '${spec}' that lib/index.ts re-exports`);
    const namespace = !!st.exportClause && ts.isNamespaceExport(st.exportClause);
    const known = files.find((m) => m.file === file);
    if (known) known.namespace = known.namespace || namespace;
    else files.push({ file, namespace });
  }
  return files;
}

// Every name lib/index.ts exports (values and types), from the compiler's view of the program.
function publicNames() {
  const program = ts.createProgram([index], { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, strict: true, skipLibCheck: true });
  const checker = program.getTypeChecker();
  const symbol = checker.getSymbolAtLocation(program.getSourceFile(index));
  return new Set(checker.getExportsOfModule(symbol).map((s) => s.getName()));
}

const lenient = process.argv.includes('--lenient');
const entries = moduleFiles();
fs.rmSync(out, { recursive: true, force: true });
const json = path.join(root, 'build-docs', 'api.json');
fs.mkdirSync(path.dirname(json), { recursive: true });
const typedoc = spawnSync('npx', ['typedoc', '--options', path.join(root, 'typedoc.json'),
  ...entries.flatMap((m) => ['--entryPoints', path.relative(root, m.file)]), '--json', json, '--out', out,
  ...(lenient ? ['--treatWarningsAsErrors', 'false'] : [])],
{ cwd: root, stdio: 'inherit' });
if (typedoc.status !== 0) fail('TypeDoc reported errors or warnings (above)');

// `../#section` (a README section, from a page one or more folders down) -> `../index.html#section`.
(function rewriteFrontPageLinks(dir) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) rewriteFrontPageLinks(file);
    else if (entry.name.endsWith('.html')) {
      const html = fs.readFileSync(file, 'utf8');
      const fixed = html.replace(/href="((?:\.\.\/)+)#/g, 'href="$1index.html#');
      if (fixed !== html) fs.writeFileSync(file, fixed);
    }
  }
})(out);

const pub = publicNames();
// Public namespace names (nn, autograd) and the module each stands for.
const publicNamespaces = new Map();
{
  const source = ts.createSourceFile(index, fs.readFileSync(index, 'utf8'), ts.ScriptTarget.Latest, true);
  for (const st of source.statements) {
    if (ts.isExportDeclaration(st) && st.exportClause && ts.isNamespaceExport(st.exportClause)) {
      const base = path.resolve(path.dirname(index), st.moduleSpecifier.text);
      const file = [`${base}.ts`, path.join(base, 'index.ts')].find((f) => fs.existsSync(f));
      publicNamespaces.set(st.exportClause.name.text, entries.find((m) => m.file === file));
    }
  }
}
const project = JSON.parse(fs.readFileSync(json, 'utf8'));
const leaked = [];
const undescribed = [];
const documented = new Set();
// TypeDoc names a module by its path under lib/, without /index.
const moduleName = (file) => path.relative(path.join(root, 'lib'), file).replace(/\.ts$/, '').replace(/\/index$/, '');
const namespaces = new Map(entries.filter((m) => m.namespace).map((m) => [moduleName(m.file), m]));
for (const mod of project.children || []) {
  // A module's page opens with its description: the file's first doc comment, tagged @module.
  if (!mod.comment) undescribed.push(mod.name);
  if (namespaces.has(mod.name)) {
    for (const [name, m] of publicNamespaces) if (m === namespaces.get(mod.name)) documented.add(name);
    continue;
  }
  for (const child of mod.children || []) {
    documented.add(child.name);
    if (!pub.has(child.name)) leaked.push(`${mod.name}.${child.name}`);
  }
}
const missing = [...pub].filter((n) => !documented.has(n));
const findings = [];
if (leaked.length) findings.push(`documented but not exported by lib/index.ts (mark them @internal or re-export them): ${leaked.join(', ')}`);
if (undescribed.length) findings.push(`modules without a description (a first doc comment tagged @module): ${undescribed.join(', ')}`);
if (missing.length) findings.push(`exported by lib/index.ts but not in the reference: ${missing.join(', ')}`);
if (findings.length && !lenient) fail(findings.join('\n'));
for (const f of findings) process.stdout.write(`docs (lenient): ${f}\n`);
process.stdout.write(`docs: ${entries.length} modules, ${documented.size} exported names -> ${path.relative(root, out)}/index.html\n`);
