#!/usr/bin/env node
// Prints random listener patterns of the shared subset, with subjects and
// whether the client's RegExp matches each; node_test.go checks that RE2
// gives the same answers. Usage: node test/gen-patterns.js COUNT SEED
'use strict';
const { compilePattern } = require('../dist/pattern.js');

const count = Number(process.argv[2] ?? 2000);
let seed = Number(process.argv[3] ?? 1) >>> 0;
const rnd = (n) => {
  seed = (seed * 1103515245 + 12345) >>> 0;
  return (seed >>> 8) % n;
};
const pick = (a) => a[rnd(a.length)];

const chars = ['a', 'b', 'A', '0', '9', '_', '-', '.', ' ', '\t', '\n', '\r', '\u000b', '\f', '\u00a0', 'é', '😀', '/', '\u2028'];
const atoms = ['a', 'b', '.', '\\d', '\\D', '\\w', '\\W', '\\s', '\\S', '\\.', '\\-'.slice(1), 'é', '😀', '\\x41', '\\x{e9}', '\\t', '\\n', '\\r', '\\v', '\\f', '\\/', '/'];
const klassItems = ['a', 'b', 'a-c', '0-9', '\\d', '\\w', '\\W', '\\s', '\\n', '\\r', '.', '*', 'é', '😀', '\\]', '\\-', '\\x41-\\x5a', '_'];
const quants = ['', '', '', '*', '+', '?', '*?', '+?', '??', '{2}', '{1,2}', '{0,}', '{1,3}?'];

function term(depth) {
  let a;
  const r = rnd(10);
  if (r < 5 || depth > 2) a = pick(atoms);
  else if (r < 7) {
    const n = 1 + rnd(3);
    a = '[' + (rnd(3) === 0 ? '^' : '') + Array.from({ length: n }, () => pick(klassItems)).join('') + ']';
  } else a = (rnd(2) ? '(' : '(?:') + alt(depth + 1) + ')';
  return a + pick(quants);
}
function seq(depth) {
  const n = rnd(4);
  let s = Array.from({ length: n }, () => term(depth)).join('');
  if (rnd(8) === 0) s = '^' + s;
  if (rnd(8) === 0) s += '$';
  if (rnd(10) === 0) s = '\\b' + s;
  return s;
}
function alt(depth) {
  const n = 1 + (rnd(4) === 0 ? 1 : 0);
  return Array.from({ length: n }, () => seq(depth)).join('|');
}

const out = [];
let refused = 0;
while (out.length < count) {
  const pattern = alt(0);
  let re;
  try {
    re = compilePattern(pattern);
  } catch {
    refused++;
    continue;
  }
  const subjects = Array.from({ length: 30 }, () => Array.from({ length: rnd(5) }, () => pick(chars)).join(''));
  out.push({ pattern, subjects, match: subjects.map((s) => re.test(s)) });
}
process.stdout.write(JSON.stringify({ refused, cases: out }));
