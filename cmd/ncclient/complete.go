package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"

	"github.com/netcluster/netcluster/control"
)

// separators end a word for completion: spaces, and the punctuation of
// function syntax.
const separators = " \t(,\"'"

// completer returns the REPL's tab completion: the command name, then
// channel names, agent ids and file paths for the arguments that take
// them. A single match is filled in; several are filled up to their
// common prefix, and listed when that adds nothing.
func (c *client) completer(ctx context.Context, t *term.Terminal) func(line string, pos int, key rune) (string, int, bool) {
	return func(line string, pos int, key rune) (string, int, bool) {
		if key != '\t' {
			return "", 0, false
		}
		before, word := splitWord(line[:pos])
		cands, kind := c.candidates(ctx, before, word)
		var matches []string
		for _, s := range cands {
			if strings.HasPrefix(s, word) {
				matches = append(matches, s)
			}
		}
		if len(matches) == 0 {
			return "", 0, false
		}
		fill := commonPrefix(matches)
		if len(matches) == 1 && !strings.Contains(before, "(") && !(kind == kindPath && strings.HasSuffix(fill, string(filepath.Separator))) {
			fill += " "
		}
		if fill == word {
			fmt.Fprintln(t, strings.Join(matches, "  "))
			return "", 0, false
		}
		return before + fill + line[pos:], len(before) + len(fill), true
	}
}

// splitWord splits the text before the cursor into what precedes the word
// being completed and that word.
func splitWord(s string) (before, word string) {
	i := strings.LastIndexAny(s, separators) + 1
	return s[:i], s[i:]
}

// candidates returns the completions of word, which follows before, and
// what kind of argument it is.
func (c *client) candidates(ctx context.Context, before, word string) ([]string, argKind) {
	toks := strings.FieldsFunc(before, func(r rune) bool { return strings.ContainsRune(separators, r) })
	if len(toks) == 0 {
		names := []string{"exit", "help", "quit"}
		for _, cmd := range commands {
			if cmd.repl {
				names = append(names, cmd.name)
			}
		}
		slices.Sort(names)
		return names, kindText
	}
	cmd := lookup(toks[0])
	n := len(toks) - 1
	if cmd == nil || n >= len(cmd.args) {
		return nil, kindText
	}
	ctx, cancel := context.WithTimeout(ctx, completionTimeout)
	defer cancel()
	switch kind := cmd.args[n].kind; kind {
	case kindChannel:
		names, _ := c.channelNames(ctx)
		return names, kind
	case kindAgent:
		res, err := c.request(ctx, control.Request{Cmd: control.CmdShowChannel, Channel: toks[1]})
		if err != nil {
			return nil, kind
		}
		var ci control.ChannelInfo
		json.Unmarshal(res, &ci)
		var ids []string
		for _, a := range ci.Agents {
			ids = append(ids, a.ID)
		}
		return ids, kind
	case kindPath:
		return pathCandidates(word), kind
	}
	return nil, kindText
}

// pathCandidates lists the files whose path starts with word;
// directories end with a separator.
func pathCandidates(word string) []string {
	esc := word
	if runtime.GOOS != "windows" { // where \ is a separator, not an escape
		esc = strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(word)
	}
	paths, _ := filepath.Glob(esc + "*")
	for i, p := range paths {
		if fi, err := os.Stat(p); err == nil && fi.IsDir() {
			paths[i] = p + string(filepath.Separator)
		}
	}
	return paths
}

func commonPrefix(s []string) string {
	p := s[0]
	for _, x := range s[1:] {
		for !strings.HasPrefix(x, p) {
			_, n := utf8.DecodeLastRuneInString(p)
			p = p[:len(p)-n]
		}
	}
	return p
}
