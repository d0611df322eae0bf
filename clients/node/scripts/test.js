#!/usr/bin/env node
// Runs the Node suite: builds the package, builds ncserver, ncclient and
// the Go agent of the tests from this repository unless $NCSERVER,
// $NCCLIENT and $NCGOAGENT name them (the Go test clients/node/node_test.go
// passes its own), then node --test.
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const repo = path.join(root, '..', '..');
if (!process.env.NC_BUILT) execFileSync(process.execPath, [path.join(__dirname, 'build.js')], { stdio: 'inherit' });
const env = { ...process.env };
const programs = { ncserver: './cmd/ncserver', ncclient: './cmd/ncclient', ncgoagent: './clients/node/test/goagent' };
if (Object.keys(programs).some((name) => !env[name.toUpperCase()])) {
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'ncn-bin-'));
  for (const [name, pkg] of Object.entries(programs)) {
    execFileSync('go', ['build', '-o', path.join(bin, name), pkg], { cwd: repo, stdio: 'inherit' });
    env[name.toUpperCase()] = path.join(bin, name);
  }
  process.on('exit', () => fs.rmSync(bin, { recursive: true, force: true }));
}
const files = fs.readdirSync(path.join(root, 'test')).filter((f) => f.endsWith('.test.js')).map((f) => path.join('test', f));
const only = process.argv.slice(2);
const reporter = env.NC_TEST_REPORTER ? ['--test-reporter=' + env.NC_TEST_REPORTER] : [];
const r = spawnSync(process.execPath, ['--test', ...reporter, ...(only.length ? only : files)], { cwd: root, env, stdio: 'inherit' });
process.exitCode = r.status ?? 1;
