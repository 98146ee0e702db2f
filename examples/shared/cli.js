'use strict';
// Command-line flags of the examples: `--name value` or `--name=value` for every key of the
// defaults, `--quick` for a smoke run, `--help` for the comment block at the top of the script.
// Anything else is refused, so a mistyped flag never runs the defaults silently.
const fs = require('fs');

// The script's leading comment block (after the shebang and 'use strict'), without the slashes.
function usage(file) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith('//'));
  const end = lines.findIndex((l, k) => k > start && !l.startsWith('//'));
  return lines.slice(start, end).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n';
}

/**
 * Reads argv against `defaults` (every flag a script takes, with its value). `numeric` names the
 * flags that are positive numbers, `integer` those of them that must be whole; `quick` holds the
 * values --quick sets for the flags not given explicitly. Returns the options with `quick` set.
 */
function parseArgs(argv, { file, defaults, numeric = [], integer = [], quick = {} }) {
  const opts = { ...defaults, quick: false };
  const given = new Set();
  const isNumeric = new Set([...numeric, ...integer]);
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a === '--quick') {
      opts.quick = true;
      continue;
    }
    if (a === '--help' || a === '-h') {
      process.stdout.write(usage(file));
      process.exit(0);
    }
    const m = /^--([a-z]+)(?:=(.*))?$/.exec(a);
    if (!m || !(m[1] in defaults)) throw new Error(`unknown argument ${a} (try --help)`);
    const value = m[2] !== undefined ? m[2] : argv[++k];
    if (value === undefined) throw new Error(`--${m[1]} needs a value`);
    given.add(m[1]);
    if (isNumeric.has(m[1])) {
      const v = Number(value);
      if (!Number.isFinite(v) || v <= 0) throw new Error(`--${m[1]} must be a positive number`);
      opts[m[1]] = v;
    } else {
      opts[m[1]] = value;
    }
  }
  if (opts.quick) {
    for (const [key, v] of Object.entries(quick)) if (!given.has(key)) opts[key] = v;
  }
  for (const key of integer) {
    if (!Number.isInteger(opts[key])) throw new Error(`--${key} must be an integer`);
  }
  return opts;
}

module.exports = { parseArgs, usage };
