// Package router decides which subscribers receive a message.
//
// Use [Compile] to turn a listener pattern into a [Pattern], and an [Index]
// to record which subscribers listen to which patterns and to ask, for an
// event name, who listens to it ([Index.Match]).
//
// # Patterns
//
// A listener pattern is RE2 syntax (package regexp) matched against the whole
// event name, as if compiled as ^(?:pattern)$: "log" matches only "log", not
// "logs"; "a|b" matches "a" and "b" but not "ab". ".*" matches every event
// name without a newline, "(?s).*" every event name.
//
// Most patterns are plain names, and [Compile] matches them without running
// a regular expression: a literal (no metacharacters, or only escaped ones,
// as in `chat\.room`) by string equality, and a name whose only
// metacharacter is '.', like "chat.room" (where, as in RE2, '.' is any
// character but a newline), as a template of fixed segments and wildcards.
// [Index] finds literals with one map lookup and templates with one lookup
// per distinct shape, however many subscribers there are.
//
// # Cost
//
// [Index.Match] caches its answer per event name until a change to the index
// could alter it, so steady-state routing performs one map lookup, takes no
// lock and allocates nothing. The cache is bounded (see [WithCacheSize]) and
// subscriber lists are shared between cache entries that have the same
// answer, so random event names from a hostile client cannot grow memory
// without bound.
package router
