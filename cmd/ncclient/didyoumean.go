package main

import "fmt"

// didYouMean returns ` did you mean "X"?` for the command name closest to
// name, if one is within two edits; "" otherwise.
func didYouMean(name string) string {
	best, bestD := "", 3
	consider := func(c string) {
		if d := editDistance(name, c); d < bestD && d < len(c) {
			best, bestD = c, d
		}
	}
	for _, cmd := range commands {
		consider(cmd.name)
	}
	for _, c := range []string{"help", "exit", "quit"} {
		consider(c)
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" did you mean %q?", best)
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
