#!/usr/bin/env node
// Node publisher → server → Node subscriber, 128-byte messages, msgs/s at
// the subscriber: @netcluster/client on ncserver (Unix socket) against the
// official NATS Node client (@nats-io/transport-node) on nats-server (the
// bench module's embedded server, `ncbench natsd`, on 127.0.0.1), in the
// same run, alternating round by round. Publisher and subscriber are
// processes of their own.
//
//   cd clients/node && npm run build && cd bench && npm install && node bench.js [-n 300000] [-rounds 3] [-outbuffer BYTES]
//
// Each publisher uses its client as documented: ours waits for 'drain'
// whenever emit returns false; the NATS publisher publishes in a loop and
// awaits flush() at the end, as nats.js's own benchmark does (nats.js has
// no write-backpressure signal; -natsflush N awaits flush() every N
// messages instead, which measured slower). Each run starts a fresh server.
'use strict';
const { spawn, execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const SIZE = 128;
const REPO = path.join(__dirname, '..', '..', '..');

function arg(name, def) {
  const i = process.argv.indexOf('-' + name);
  return i > 0 ? Number(process.argv[i + 1]) : def;
}

// ---- child roles ----

async function ncSub(dir, n) {
  const { Agent } = require('..');
  const a = new Agent({ socketDir: dir });
  await a.connect('A');
  let count = 0;
  let first = 0;
  let last = 0;
  let dropped = 0;
  a.on('error', (e) => (dropped += e.count ?? 0));
  const done = new Promise((resolve) => {
    a.on('bench', () => {
      if (count === 0) first = process.hrtime.bigint();
      last = process.hrtime.bigint();
      if (++count === n) resolve();
    });
  });
  await a.flush();
  console.log('READY');
  await idleOr(done, () => count);
  report({ count, ns: Number(last - first), dropped });
  await a.close();
}

async function ncPub(dir, n) {
  const { Agent } = require('..');
  const a = new Agent({ socketDir: dir });
  await a.connect('A');
  const payload = Buffer.alloc(SIZE, 'x');
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    if (!a.emit('bench', payload)) await new Promise((r) => a.once('drain', r));
  }
  await a.flush();
  report({ ns: Number(process.hrtime.bigint() - start) });
  await a.close();
}

async function natsSub(url, n) {
  const { connect } = require('@nats-io/transport-node');
  const nc = await connect({ servers: url });
  let count = 0;
  let first = 0;
  let last = 0;
  let resolveDone;
  const done = new Promise((r) => (resolveDone = r));
  nc.subscribe('bench', {
    callback: () => {
      if (count === 0) first = process.hrtime.bigint();
      last = process.hrtime.bigint();
      if (++count === n) resolveDone();
    },
  });
  await nc.flush();
  console.log('READY');
  await idleOr(done, () => count);
  report({ count, ns: Number(last - first), dropped: 0 });
  await nc.close();
}

async function natsPub(url, n) {
  const flushEvery = Number(process.env.NATS_FLUSH ?? 0);
  const { connect } = require('@nats-io/transport-node');
  const nc = await connect({ servers: url });
  const payload = new Uint8Array(SIZE).fill(120);
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    nc.publish('bench', payload);
    if (flushEvery > 0 && i % flushEvery === flushEvery - 1) await nc.flush();
  }
  await nc.flush();
  report({ ns: Number(process.hrtime.bigint() - start) });
  await nc.close();
}

// Resolves when done does, or when count stops moving for 3 s (losses).
async function idleOr(done, count) {
  let seen = -1;
  let timer;
  const idle = new Promise((resolve) => {
    timer = setInterval(() => {
      const c = count();
      if (c === seen && c > 0) resolve();
      seen = c;
    }, 3000);
  });
  await Promise.race([done, idle]);
  clearInterval(timer);
}

// Prints the result with the process's CPU time (user + system, µs).
function report(r) {
  const u = process.cpuUsage();
  console.log('RESULT ' + JSON.stringify({ ...r, cpu: u.user + u.system }));
}

// ---- orchestration ----

function child(role, where, n) {
  const p = spawn(process.execPath, [__filename, role, where, String(n)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: p.stdout });
  const waiters = [];
  const got = [];
  lines.on('line', (l) => {
    got.push(l);
    for (const w of waiters.splice(0)) w();
  });
  const expect = (prefix) =>
    new Promise((resolve, reject) => {
      const check = () => {
        const l = got.find((x) => x.startsWith(prefix));
        if (l) return resolve(l.slice(prefix.length).trim());
        if (p.exitCode !== null) return reject(new Error(`${role} exited without ${prefix}`));
        waiters.push(check);
      };
      p.once('exit', () => check());
      check();
    });
  return { p, expect };
}

async function runOnce(sys, n, bins) {
  let where;
  let server;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ncb-'));
  if (sys === 'netcluster') {
    const cfg = path.join(tmp, 'c.json');
    const conf = { socketdir: tmp, channels: { A: {} } };
    if (bins.outbuffer) conf.outbuffer = bins.outbuffer;
    fs.writeFileSync(cfg, JSON.stringify(conf));
    server = spawn(bins.ncserver, [cfg], { stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise((resolve) => {
      let out = '';
      const onData = (b) => {
        out += b;
        if (/channel listening"? channel=A|channel A\s+listening/.test(out)) resolve();
      };
      server.stdout.on('data', onData);
      server.stderr.on('data', onData);
    });
    where = tmp;
  } else {
    server = spawn(bins.ncbench, ['natsd'], { stdio: ['pipe', 'pipe', 'inherit'] });
    where = await new Promise((resolve) => {
      const rl = readline.createInterface({ input: server.stdout });
      rl.on('line', (l) => l.startsWith('READY ') && resolve(l.slice(6).trim()));
    });
  }
  const prefix = sys === 'netcluster' ? 'nc' : 'nats';
  const sub = child(prefix + '-sub', where, n);
  await sub.expect('READY');
  const pub = child(prefix + '-pub', where, n);
  const pr = JSON.parse(await pub.expect('RESULT'));
  const sr = JSON.parse(await sub.expect('RESULT'));
  await Promise.all([sub.p, pub.p].map((p) => (p.exitCode === null ? new Promise((r) => p.once('exit', r)) : null)));
  if (sys === 'netcluster') server.kill('SIGTERM');
  else server.stdin.end();
  await new Promise((r) => server.once('exit', r));
  fs.rmSync(tmp, { recursive: true, force: true });
  return { rate: sr.count / (sr.ns / 1e9), received: sr.count, pubRate: n / (pr.ns / 1e9), dropped: sr.dropped, cpu: (sr.cpu + pr.cpu) / n };
}

async function main() {
  const n = arg('n', 300000);
  const rounds = arg('rounds', 3);
  const bin = fs.mkdtempSync(path.join(os.tmpdir(), 'ncb-bin-'));
  // -outbuffer BYTES: ncserver's per-agent buffer (default: ncserver's, 8 MiB);
  // 67108864 is nats-server's default per-client bound (max_pending, 64 MB).
  const bins = { ncserver: path.join(bin, 'ncserver'), ncbench: path.join(bin, 'ncbench'), outbuffer: arg('outbuffer', 0) };
  execFileSync('go', ['build', '-o', bins.ncserver, './cmd/ncserver'], { cwd: REPO, stdio: 'inherit' });
  execFileSync('go', ['build', '-o', bins.ncbench, './cmd/ncbench'], { cwd: path.join(REPO, 'bench'), stdio: 'inherit' });
  // -natsflush N: the NATS publisher awaits flush() every N messages (0:
  // only at the end). -only nats|netcluster runs one system.
  process.env.NATS_FLUSH = String(arg('natsflush', 0));
  const only = process.argv.includes('-only') ? process.argv[process.argv.indexOf('-only') + 1] : '';
  const res = { netcluster: [], nats: [] };
  for (let r = 0; r < rounds; r++) {
    for (const sys of (r % 2 === 0 ? ['netcluster', 'nats'] : ['nats', 'netcluster']).filter((x) => !only || x === only)) {
      const x = await runOnce(sys, n, bins);
      res[sys].push(x);
      console.error(`round ${r + 1} ${sys.padEnd(10)} ${Math.round(x.rate).toLocaleString('en')} msgs/s delivered (${x.received}/${n}, publisher ${Math.round(x.pubRate).toLocaleString('en')} msgs/s, dropped ${x.dropped}, client CPU ${x.cpu.toFixed(2)} µs/msg)`);
    }
  }
  const med = (a, k) => (a.length ? a.map((x) => x[k]).sort((p, q) => p - q)[Math.floor(a.length / 2)] : NaN);
  const nc = med(res.netcluster, 'rate');
  const nats = med(res.nats, 'rate');
  const natsVersion = JSON.parse(fs.readFileSync(path.join(__dirname, 'node_modules/@nats-io/transport-node/package.json'), 'utf8')).version;
  const lost = (a) => a.reduce((s, x) => s + (n - x.received), 0);
  console.log(`| system | client | msgs/s delivered (median of ${rounds}) | client CPU µs/msg (pub + sub, median) | lost |\n|---|---|---|---|---|`);
  console.log(`| netcluster (ncserver, Unix socket) | @netcluster/client ${require('../package.json').version} | ${Math.round(nc).toLocaleString('en')} | ${med(res.netcluster, 'cpu').toFixed(2)} | ${lost(res.netcluster)} |`);
  console.log(`| NATS (nats-server, 127.0.0.1) | @nats-io/transport-node ${natsVersion} | ${Math.round(nats).toLocaleString('en')} | ${med(res.nats, 'cpu').toFixed(2)} | ${lost(res.nats)} |`);
  console.log(`ratio netcluster/NATS: ${(nc / nats).toFixed(2)}x msgs/s (ncserver outbuffer ${bins.outbuffer || 'default'}, Node ${process.version}, ${os.cpus().length} CPUs, load average ${os.loadavg()[0].toFixed(1)}, ${n} messages of ${SIZE} B per run)`);
  fs.rmSync(bin, { recursive: true, force: true });
}

const roles = { 'nc-sub': ncSub, 'nc-pub': ncPub, 'nats-sub': natsSub, 'nats-pub': natsPub };
if (roles[process.argv[2]]) {
  roles[process.argv[2]](process.argv[3], Number(process.argv[4])).catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
