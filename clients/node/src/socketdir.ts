// Where the channel sockets are. The rule is data: socketdir.json, the same
// file the Go library embeds (config/socketdir.json in the repository,
// copied next to this file at build), so the two sides never disagree.

import { lstatSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** One step of the rule; the first that yields a directory wins. */
export interface SocketDirStep {
  use: 'option' | 'env' | 'dir' | 'private';
  name?: string;
  dir?: string;
  if?: 'root' | 'user';
}

let cached: SocketDirStep[] | undefined;

/** The rule of socketdir.json, read once. */
export function socketDirRule(): SocketDirStep[] {
  if (cached === undefined) {
    const f = JSON.parse(readFileSync(join(__dirname, 'socketdir.json'), 'utf8')) as { rule: SocketDirStep[] };
    for (const [i, s] of f.rule.entries()) {
      if (!['option', 'env', 'dir', 'private'].includes(s.use)) {
        throw new Error(`netcluster: socketdir.json: step ${i}: unknown use ${JSON.stringify(s.use)}`);
      }
    }
    cached = f.rule;
  }
  return cached;
}

/** Applies rule; euid -1 means Windows (never root); priv is the private directory. */
export function applySocketDirRule(
  rule: SocketDirStep[],
  option: string | undefined,
  env: Record<string, string | undefined>,
  euid: number,
  priv: string,
): string {
  for (const s of rule) {
    if (s.if === 'root' && euid !== 0) continue;
    if (s.if === 'user' && euid === 0) continue;
    let dir: string | undefined;
    switch (s.use) {
      case 'option':
        dir = option;
        break;
      case 'env':
        dir = env[s.name ?? ''];
        break;
      case 'dir':
        dir = s.dir;
        break;
      case 'private':
        dir = priv;
        break;
    }
    if (dir) return dir;
  }
  return priv;
}

function euid(): number {
  return typeof process.geteuid === 'function' ? process.geteuid() : -1;
}

/**
 * The per-user private directory, as the Go side's transport.PrivateDir:
 * <temp dir>/netcluster-<uid> (Windows: <temp dir>/netcluster).
 */
export function privateDir(): string {
  return process.platform === 'win32' ? join(tmpdir(), 'netcluster') : join(tmpdir(), 'netcluster-' + euid());
}

/**
 * Why dir cannot serve as the private directory (another owner, a wider
 * mode, not a directory), or null. A missing directory is fine: there is
 * no server there yet, and connecting says so.
 */
export function checkPrivateDir(dir: string): string | null {
  if (process.platform === 'win32') return null;
  let st;
  try {
    st = lstatSync(dir);
  } catch {
    return null;
  }
  if (!st.isDirectory()) return `${dir} is not a directory`;
  if (st.uid !== euid()) {
    return `${dir} belongs to uid ${st.uid}, not to you (uid ${euid()}); another user may have made it to capture your sockets (remove it, or set a socket directory)`;
  }
  if ((st.mode & 0o077) !== 0) return `${dir} has mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}; the private directory must be 0700`;
  return null;
}

/**
 * The socket directory: the socketDir option if given, else
 * $NETCLUSTER_SOCKETDIR, else /var/run as root, else $XDG_RUNTIME_DIR, else
 * the private directory <temp dir>/netcluster-<uid> (as socketdir.json
 * says). The environment is read at each call.
 */
export function resolveSocketDir(option?: string): string {
  return applySocketDirRule(socketDirRule(), option, process.env, euid(), privateDir());
}

/** The socket of channel in dir (a named pipe on Windows, as the Go side). */
export function socketPath(dir: string, channel: string): string {
  if (process.platform === 'win32') return '\\\\.\\pipe\\netcluster-' + channel;
  return join(dir, 'netcluster-' + channel);
}
