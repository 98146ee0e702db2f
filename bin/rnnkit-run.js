#!/usr/bin/env node
// rnnkit-run: starts the ranks of a data-parallel job (see `rnnkit-run --help` and docs/distributed.md).
'use strict';
require('../dist/distributed/launcher').main(process.argv.slice(2));
