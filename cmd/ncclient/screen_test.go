package main

import (
	"strconv"
	"strings"
	"sync"
)

// screen is a small terminal emulator for tests that read what a
// full-screen program shows: printable text, CR, LF, backspace, and the
// CSI sequences that move the cursor and erase (A B C D H f J K); the
// others (colours, modes) and OSC strings are ignored. Write is safe for
// concurrent use with String.
type screen struct {
	mu         sync.Mutex
	rows, cols int
	cells      [][]rune
	r, c       int
	pending    []byte // an incomplete escape sequence
}

func newScreen(rows, cols int) *screen {
	s := &screen{rows: rows, cols: cols}
	s.clear()
	return s
}

func (s *screen) clear() {
	s.cells = make([][]rune, s.rows)
	for i := range s.cells {
		s.cells[i] = []rune(strings.Repeat(" ", s.cols))
	}
}

func (s *screen) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := append(s.pending, p...)
	s.pending = nil
	for i := 0; i < len(b); {
		switch ch := b[i]; {
		case ch == 0x1b:
			n := s.escape(b[i:])
			if n == 0 { // incomplete: wait for more
				s.pending = append([]byte(nil), b[i:]...)
				return len(p), nil
			}
			i += n
		case ch == '\r':
			s.c = 0
			i++
		case ch == '\n':
			s.down()
			i++
		case ch == '\b':
			s.c = max(s.c-1, 0)
			i++
		case ch < 0x20:
			i++
		default:
			r, size := decodeRune(b[i:])
			if size == 0 {
				s.pending = append([]byte(nil), b[i:]...)
				return len(p), nil
			}
			if s.c >= s.cols {
				s.c = 0
				s.down()
			}
			s.cells[s.r][s.c] = r
			s.c++
			i += size
		}
	}
	return len(p), nil
}

func (s *screen) down() {
	if s.r == s.rows-1 {
		copy(s.cells, s.cells[1:])
		s.cells[s.rows-1] = []rune(strings.Repeat(" ", s.cols))
		return
	}
	s.r++
}

// escape handles the sequence at the start of b and returns its length,
// 0 if b ends before it does.
func (s *screen) escape(b []byte) int {
	if len(b) < 2 {
		return 0
	}
	switch b[1] {
	case '[':
	case ']': // OSC, to BEL or ST
		for i := 2; i < len(b); i++ {
			if b[i] == 0x07 {
				return i + 1
			}
			if b[i] == 0x1b && i+1 < len(b) && b[i+1] == '\\' {
				return i + 2
			}
		}
		return 0
	default:
		return 2 // ESC x: ignored
	}
	i := 2
	for i < len(b) && (b[i] < 0x40 || b[i] > 0x7e) {
		i++
	}
	if i == len(b) {
		return 0
	}
	params := string(b[2:i])
	arg := func(k, def int) int {
		parts := strings.Split(strings.TrimLeft(params, "?"), ";")
		if k < len(parts) {
			if n, err := strconv.Atoi(parts[k]); err == nil {
				return n
			}
		}
		return def
	}
	switch b[i] {
	case 'A':
		s.r = max(s.r-arg(0, 1), 0)
	case 'B':
		s.r = min(s.r+arg(0, 1), s.rows-1)
	case 'C':
		s.c = min(s.c+arg(0, 1), s.cols-1)
	case 'D':
		s.c = max(s.c-arg(0, 1), 0)
	case 'H', 'f':
		s.r, s.c = min(max(arg(0, 1)-1, 0), s.rows-1), min(max(arg(1, 1)-1, 0), s.cols-1)
	case 'J':
		if arg(0, 0) >= 2 {
			s.clear()
		} else {
			for c := s.c; c < s.cols; c++ {
				s.cells[s.r][c] = ' '
			}
			for r := s.r + 1; r < s.rows; r++ {
				s.cells[r] = []rune(strings.Repeat(" ", s.cols))
			}
		}
	case 'K':
		from, to := s.c, s.cols
		switch arg(0, 0) {
		case 1:
			from, to = 0, s.c+1
		case 2:
			from = 0
		}
		for c := from; c < min(to, s.cols); c++ {
			s.cells[s.r][c] = ' '
		}
	}
	return i + 1
}

func decodeRune(b []byte) (rune, int) {
	if b[0] < 0x80 {
		return rune(b[0]), 1
	}
	n := 0
	switch {
	case b[0]&0xe0 == 0xc0:
		n = 2
	case b[0]&0xf0 == 0xe0:
		n = 3
	case b[0]&0xf8 == 0xf0:
		n = 4
	default:
		return '?', 1
	}
	if len(b) < n {
		return 0, 0
	}
	return []rune(string(b[:n]))[0], n
}

// String is the screen's text, rows without trailing blanks.
func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	lines := make([]string, s.rows)
	for i, row := range s.cells {
		lines[i] = strings.TrimRight(string(row), " ")
	}
	return strings.Join(lines, "\n")
}
