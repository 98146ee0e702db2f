'use strict';
// The runnable examples of README.md, read from its fenced code blocks so that the tests run what
// readers see. Every block fenced as js, javascript, cjs or mjs is a complete program: it runs as
// an ES module when fenced as mjs or when it has an import or export statement, as CommonJS
// otherwise. Sketches that are not meant to run go in other fences (ts, text, sh).
const fs = require('fs');
const path = require('path');

const RUNNABLE = new Set(['js', 'javascript', 'cjs', 'mjs']);

/** [{ line, heading, module, source }] for each runnable block of the markdown file. */
function readmeExamples(file = path.join(__dirname, '..', 'README.md')) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const examples = [];
  let heading = '';
  for (let i = 0; i < lines.length; i++) {
    const h = /^#{1,6}\s+(.*)$/.exec(lines[i]);
    if (h) heading = h[1];
    const open = /^```(\S*)/.exec(lines[i]);
    if (!open) continue;
    const start = i;
    const body = [];
    for (i++; i < lines.length && !/^```\s*$/.test(lines[i]); i++) body.push(lines[i]);
    const lang = open[1].toLowerCase();
    if (!RUNNABLE.has(lang)) continue;
    const source = body.join('\n') + '\n';
    const esm = lang === 'mjs' || (lang !== 'cjs' && /^\s*(import|export)\s/m.test(source));
    examples.push({ line: start + 1, heading, module: esm ? 'mjs' : 'cjs', source });
  }
  return examples;
}

/** Package specifiers ('rnnkit', 'rnnkit/…') that the markdown files require or import. */
function documentedSpecifiers(files, name) {
  const found = new Set();
  const re = new RegExp(`(?:require\\(|from\\s+|import\\()\\s*['"](${name}(?:/[^'"]*)?)['"]`, 'g');
  for (const file of files) {
    for (const m of fs.readFileSync(file, 'utf8').matchAll(re)) found.add(m[1]);
  }
  return [...found].sort();
}

module.exports = { readmeExamples, documentedSpecifiers };
