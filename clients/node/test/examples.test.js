'use strict';
// The seed README's receiver and sender, with only the require line
// changed (and the stray "});" at the end of the seed's sender removed: it
// is a syntax error in any JavaScript), run as programs; then the same
// from the tarball of `npm pack`, installed into a fresh project.
const test = require('node:test');
const assert = require('node:assert/strict');
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startServer, shortDir } = require('./helpers');

const root = path.join(__dirname, '..');
// scripts/test.js has built dist/; the pack test packs that build.

function run(file, cwd, env) {
  const p = spawn(process.execPath, [file], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (b) => (out += b));
  p.stderr.on('data', (b) => (out += b));
  const exit = new Promise((resolve) => p.once('exit', (code, sig) => resolve({ code, sig, out })));
  return { p, exit };
}

async function receiverAndSender(t, dir) {
  const srv = await startServer(t, {}); // A propagates to ".*", as in the seed's sample
  const env = { NETCLUSTER_SOCKETDIR: srv.dir };
  const receiver = run(path.join(dir, 'receiver.js'), dir, env);
  // The receiver listens once connected; the sender emits every second.
  await new Promise((r) => setTimeout(r, 300));
  const sender = run(path.join(dir, 'sender.js'), dir, env);
  t.after(() => sender.p.kill('SIGKILL'));
  const kill = setTimeout(() => receiver.p.kill('SIGKILL'), 15000);
  const r = await receiver.exit;
  clearTimeout(kill);
  sender.p.kill('SIGTERM');
  await sender.exit;
  assert.equal(r.code, 0, 'the receiver exits by itself after disconnect():\n' + r.out);
  const m = /^A called:(.*)$/m.exec(r.out);
  assert.ok(m, r.out);
  const msg = JSON.parse(m[1]);
  assert.equal(msg.event, 'log');
  assert.equal(msg.data, 'TESTE');
  assert.equal(msg.channel, 'A');
  assert.equal(msg.local, false);
}

test('the seed snippets run with only the require line changed', async (t) => {
  const seed = fs.readFileSync(path.join(root, 'examples', 'receiver.js'), 'utf8');
  assert.match(seed, /^var Agent = require\('@netcluster\/client'\)\.NCAgent;$/m);
  await receiverAndSender(t, path.join(root, 'examples'));
});

test('npm pack: only what a user needs, and it installs and runs', async (t) => {
  const tmp = shortDir(t);
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', tmp], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const info = JSON.parse(out.slice(out.indexOf('[')))[0];
  const files = info.files.map((f) => f.path).sort();
  for (const f of files) assert.match(f, /^(dist\/[a-z]+\.(js|mjs|d\.ts|d\.mts|json)|README\.md|package\.json)$/, `unexpected file in the tarball: ${f}`);
  for (const f of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/socketdir.json', 'README.md', 'package.json']) assert.ok(files.includes(f), `missing ${f}`);
  const proj = path.join(tmp, 'app');
  fs.mkdirSync(proj);
  fs.writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', path.join(tmp, info.filename)], { cwd: proj, stdio: 'pipe' });
  for (const f of ['receiver.js', 'sender.js']) fs.copyFileSync(path.join(root, 'examples', f), path.join(proj, f));
  await receiverAndSender(t, proj);
  // The ES module entry point and the types.
  const esm = execFileSync(process.execPath, ['--input-type=module', '-e', "import { NCAgent, Agent } from '@netcluster/client'; import d from '@netcluster/client'; console.log(NCAgent === Agent && d.Agent === Agent)"], { cwd: proj, encoding: 'utf8' });
  assert.equal(esm.trim(), 'true');
  fs.writeFileSync(
    path.join(proj, 'check.ts'),
    "import { Agent, Message } from '@netcluster/client';\nconst a = new Agent({ socketDir: '/tmp' });\na.on('x', (m: Message) => m.event.length);\nexport const p: Promise<Agent> = a.connect('A');\n",
  );
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '--noEmit', '--strict', '--skipLibCheck', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--types', 'node', '--typeRoots', path.join(root, 'node_modules', '@types'), 'check.ts'], { cwd: proj, stdio: 'pipe' });
});
