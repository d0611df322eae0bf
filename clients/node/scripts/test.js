#!/usr/bin/env node
// Runs the Node suite: builds the package, builds ncserver and ncclient
// from this repository unless $NCSERVER and $NCCLIENT name them (the Go
// test clients/node/node_test.go passes its own), then node --test.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const repo = path.join(root, '..', '..');
if (!process.env.NC_BUILT) execFileSync(process.execPath, [path.join(__dirname, 'build.js')], { stdio: 'inherit' });
const env = { ...process.env };
if (!env.NCSERVER || !env.NCCLIENT) {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'ncn-bin-'));
  for (const name of ['ncserver', 'ncclient']) {
    execFileSync('go', ['build', '-o', path.join(bin, name), './cmd/' + name], { cwd: repo, stdio: 'inherit' });
    env[name.toUpperCase()] = path.join(bin, name);
  }
  process.on('exit', () => fs.rmSync(bin, { recursive: true, force: true }));
}
const files = fs.readdirSync(path.join(root, 'test')).filter((f) => f.endsWith('.test.js')).map((f) => path.join('test', f));
const only = process.argv.slice(2);
const r = spawnSync(process.execPath, ['--test', ...(only.length ? only : files)], { cwd: root, env, stdio: 'inherit' });
process.exitCode = r.status ?? 1;
