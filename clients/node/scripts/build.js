#!/usr/bin/env node
// Builds dist/: tsc (CommonJS and declarations), the ES module entry point
// that re-exports the CommonJS one (one copy of the state, no dual-package
// hazard), and the socket-directory rule shared with the Go side.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dist = path.join(root, 'dist');
fs.rmSync(dist, { recursive: true, force: true });
try {
  execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', root], { stdio: 'inherit' });
} catch {
  console.error('build: tsc failed (errors above)');
  process.exit(1);
}

const names = Object.keys(require(path.join(dist, 'index.js'))).filter((n) => n !== 'default' && n !== '__esModule');
fs.writeFileSync(
  path.join(dist, 'index.mjs'),
  '// ES module entry point: the CommonJS build, re-exported.\n' +
    "import cjs from './index.js';\n" +
    `export const { ${names.join(', ')} } = cjs;\n` +
    'export default cjs;\n',
);

// Declarations for the ES module entry point.
fs.writeFileSync(
  path.join(dist, 'index.d.mts'),
  "export * from './index.js';\nimport * as cjs from './index.js';\nexport default cjs;\n",
);

// The socket-directory rule is the Go module's file, copied as it is.
const rule = path.join(root, '..', '..', 'config', 'socketdir.json');
if (!fs.existsSync(rule)) {
  console.error(`build: ${rule} not found: build the package inside the netcluster repository`);
  process.exit(1);
}
fs.copyFileSync(rule, path.join(dist, 'socketdir.json'));
