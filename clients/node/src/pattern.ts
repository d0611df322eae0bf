// Listener patterns: the server filters with Go's RE2, this client filters
// again with JavaScript's RegExp, so a pattern must mean the same in both.
// compilePattern accepts only a common subset (documented in README.md,
// "Patterns"), rewrites the few constructs whose meaning differs, and
// refuses everything else with the offset and the reason.
//
// Accepted:
//   literals; escaped punctuation \. \* \+ \? \( \) \[ \] \{ \} \| \^ \$ \\ \/
//   .  (any character but \n, as in RE2; rewritten to [^\n])
//   [abc] [^a-z] classes with literals, ranges and the escapes below
//   * + ? {n} {n,} {n,m} (n, m <= 1000) and their lazy forms *? +? ?? {n}?
//   ( ) (?: ) and |;  ^ $ \b \B
//   \d \D \w \W (ASCII in both); \s \S (rewritten to RE2's [\t\n\f\r ])
//   \t \n \r \f \v \xHH \x{H...} (the latter rewritten to \u{H...})
// Refused: lookaround (?= (?! (?<= (?<!, named groups, inline flags (?i),
//   backreferences \1 \k<n>, \p{..} \P{..}, \A \z \Q..\E \C \a \u,
//   octal escapes, POSIX classes [[:alpha:]], empty classes, a quantifier
//   with nothing to repeat or on another quantifier, repeat counts > 1000.

import { PatternError } from './errors';
import { MAX_STR16 } from './wire';

const PUNCT = new Set('\\.*+?()[]{}|^$/'.split(''));
const RE2_SPACE = '\\t\\n\\f\\r ';
const MAX_REPEAT = 1000;

/** Checks pattern and returns the RegExp matching whole event names. */
export function compilePattern(pattern: string): RegExp {
  if (typeof pattern !== 'string') {
    throw new PatternError(String(pattern), 0, `a pattern is a string, not ${typeof pattern}` + ((pattern as unknown) instanceof RegExp ? ' (pass its .source)' : ''));
  }
  const n = Buffer.byteLength(pattern, 'utf8');
  if (n > MAX_STR16) throw new PatternError(pattern.slice(0, 40) + '…', 0, `${n} bytes; the limit is ${MAX_STR16}`);
  const js = new Translator(pattern).run();
  try {
    return new RegExp('^(?:' + js + ')$', 'u');
  } catch (e) {
    throw new PatternError(pattern, 0, (e as Error).message);
  }
}

type Atom = 'none' | 'atom' | 'quant' | 'anchor';

class Translator {
  private i = 0;
  private out = '';
  private depth = 0;
  private last: Atom = 'none';
  constructor(private readonly p: string) {}

  private fail(reason: string, at = this.i): never {
    throw new PatternError(this.p, at, reason);
  }

  run(): string {
    const p = this.p;
    while (this.i < p.length) {
      const c = p[this.i];
      switch (c) {
        case '\\':
          this.escape();
          break;
        case '.':
          this.emit('[^\\n]', 'atom', 1);
          break;
        case '[':
          this.klass();
          break;
        case '(':
          this.group();
          break;
        case ')':
          if (this.depth === 0) this.fail('unmatched )');
          this.depth--;
          this.emit(')', 'atom', 1);
          break;
        case '|':
          this.emit('|', 'none', 1);
          break;
        case '^':
        case '$':
          this.emit(c, 'anchor', 1);
          break;
        case '*':
        case '+':
        case '?':
          this.quantifier(c, 1);
          break;
        case '{':
          this.braces();
          break;
        case ']':
        case '}':
          this.fail(`unescaped ${c}: write \\${c}`);
          break;
        default: {
          const cp = p.codePointAt(this.i)!;
          const s = String.fromCodePoint(cp);
          this.emit(s, 'atom', s.length);
        }
      }
    }
    if (this.depth > 0) this.fail('missing )');
    return this.out;
  }

  private emit(js: string, kind: Atom, advance: number): void {
    this.out += js;
    this.last = kind;
    this.i += advance;
  }

  private quantifier(q: string, len: number): void {
    if (this.last === 'none') this.fail(`${q} has nothing to repeat`);
    if (this.last === 'anchor') this.fail(`${q} after an anchor or \\b: RE2 and JavaScript disagree`);
    if (this.last === 'quant') this.fail(`${q} after another repetition operator`);
    let s = q;
    let adv = len;
    if (this.p[this.i + len] === '?') {
      s += '?';
      adv++;
    }
    this.emit(s, 'quant', adv);
    if (this.p[this.i] === '*' || this.p[this.i] === '+' || this.p[this.i] === '?' || this.p[this.i] === '{') {
      this.fail('a repetition operator after another (possessive or nested repetition)');
    }
  }

  private braces(): void {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(this.p.slice(this.i));
    if (!m) this.fail('{ that is not a repeat count {n}, {n,} or {n,m}: write \\{ for a literal');
    const lo = Number(m[1]);
    const hi = m[3] !== undefined && m[3] !== '' ? Number(m[3]) : lo;
    if (lo > MAX_REPEAT || hi > MAX_REPEAT) this.fail(`repeat count over ${MAX_REPEAT} (the RE2 limit)`);
    if (hi < lo) this.fail(`repeat count {${lo},${hi}} out of order`);
    this.quantifier(m[0], m[0].length);
  }

  private group(): void {
    const rest = this.p.slice(this.i);
    if (rest.startsWith('(?:')) {
      this.depth++;
      this.emit('(?:', 'none', 3);
      return;
    }
    if (rest.startsWith('(?')) {
      if (/^\(\?(=|!|<=|<!)/.test(rest)) this.fail('lookaround is not RE2 syntax');
      if (/^\(\?(P?<|')/.test(rest)) this.fail('named groups differ between RE2 and JavaScript: use (?: ) or ( )');
      this.fail('inline flags such as (?i) are not JavaScript syntax');
    }
    this.depth++;
    this.emit('(', 'none', 1);
  }

  // An escape outside a class.
  private escape(): void {
    const p = this.p;
    const c = p[this.i + 1];
    if (c === undefined) this.fail('trailing backslash');
    if (PUNCT.has(c)) return this.emit('\\' + c, 'atom', 2);
    switch (c) {
      case 'd':
      case 'D':
      case 'w':
      case 'W':
        return this.emit('\\' + c, 'atom', 2);
      case 's':
        return this.emit('[' + RE2_SPACE + ']', 'atom', 2);
      case 'S':
        return this.emit('[^' + RE2_SPACE + ']', 'atom', 2);
      case 'b':
      case 'B':
        return this.emit('\\' + c, 'anchor', 2);
      case 't':
      case 'n':
      case 'r':
      case 'f':
      case 'v':
        return this.emit('\\' + c, 'atom', 2);
      case 'x':
        return this.emit(this.hex(), 'atom', 0);
    }
    this.fail(escapeReason(c));
  }

  // \xHH or \x{H...}; returns the JavaScript form and advances.
  private hex(): string {
    const rest = this.p.slice(this.i);
    let m = /^\\x([0-9A-Fa-f]{2})/.exec(rest);
    if (m) {
      this.i += m[0].length;
      return m[0];
    }
    m = /^\\x\{([0-9A-Fa-f]{1,8})\}/.exec(rest);
    if (m && parseInt(m[1], 16) <= 0x10ffff) {
      this.i += m[0].length;
      return '\\u{' + m[1] + '}';
    }
    this.fail('\\x needs two hex digits or {hex} up to 10FFFF');
  }

  // A character class: [ ... ] with literals, ranges and escapes.
  private klass(): void {
    const p = this.p;
    const start = this.i;
    let js = '[';
    this.i++;
    if (p[this.i] === '^') {
      js += '^';
      this.i++;
    }
    if (p[this.i] === ']') this.fail('] first in a class: RE2 reads it as a literal, JavaScript as the end; write \\]');
    let items = 0;
    let prev: number | null = null; // the last single character, for a range
    for (;;) {
      if (this.i >= p.length) this.fail('missing ]', start);
      const c = p[this.i];
      if (c === ']') {
        this.i++;
        break;
      }
      if (c === '[') this.fail(p[this.i + 1] === ':' ? 'POSIX classes [:name:] are not JavaScript syntax' : 'unescaped [ in a class: write \\[');
      if (c === '-' && prev !== null && p[this.i + 1] !== ']') {
        this.i++;
        const [hiJs, hi] = this.classChar();
        if (hi === null) this.fail('a range must end in a single character');
        if (hi < prev) this.fail('range out of order');
        js += '-' + hiJs;
        prev = null;
        items++;
        continue;
      }
      if (c === '-' && p[this.i + 1] !== ']' && items > 0) this.fail('- after a class escape: write \\-');
      const [cj, cp] = this.classChar();
      js += cj;
      prev = cp;
      items++;
    }
    if (items === 0) this.fail('empty class', start);
    this.out += js + ']';
    this.last = 'atom';
  }

  // One class member: returns its JavaScript text and its code point, or
  // null for a class escape such as \d that is not a single character.
  private classChar(): [string, number | null] {
    const p = this.p;
    const c = p[this.i];
    if (c !== '\\') {
      const cp = p.codePointAt(this.i)!;
      const s = String.fromCodePoint(cp);
      this.i += s.length;
      return [s === '-' ? '\\-' : s, cp];
    }
    const e = p[this.i + 1];
    if (e === undefined) this.fail('trailing backslash');
    if (PUNCT.has(e) || e === '-') {
      this.i += 2;
      return ['\\' + e, e.codePointAt(0)!];
    }
    const ctl: Record<string, number> = { t: 9, n: 10, v: 11, f: 12, r: 13 };
    if (e in ctl) {
      this.i += 2;
      return ['\\' + e, ctl[e]];
    }
    switch (e) {
      case 'd':
      case 'D':
      case 'w':
      case 'W':
        this.i += 2;
        return ['\\' + e, null];
      case 's':
        this.i += 2;
        return [RE2_SPACE, null];
      case 'S':
        this.fail('\\S inside a class means different things in RE2 and JavaScript; use [^\\t\\n\\f\\r ] outside a class');
        break;
      case 'b':
        this.fail('\\b inside a class is not RE2 syntax');
        break;
      case 'x': {
        const js = this.hex();
        const m = /^\\(?:x([0-9A-Fa-f]{2})|u\{([0-9A-Fa-f]+)\})$/.exec(js)!;
        return [js, parseInt(m[1] ?? m[2], 16)];
      }
    }
    this.fail(escapeReason(e));
  }
}

function escapeReason(c: string): string {
  if (c >= '0' && c <= '9') return `\\${c}: backreferences and octal escapes are not shared by RE2 and JavaScript`;
  switch (c) {
    case 'p':
    case 'P':
      return `\\${c}{...} Unicode classes differ between RE2 and JavaScript`;
    case 'k':
      return '\\k<name> backreferences are not RE2 syntax';
    case 'A':
    case 'z':
    case 'Q':
    case 'E':
    case 'C':
      return `\\${c} is not JavaScript syntax`;
    case 'a':
      return '\\a is not JavaScript syntax: use \\x07';
    case 'u':
      return '\\u is not RE2 syntax: use \\x{HHHH}';
    case 'c':
      return '\\c control escapes are not RE2 syntax';
  }
  return `\\${c} is not an escape shared by RE2 and JavaScript (escape only punctuation)`;
}
