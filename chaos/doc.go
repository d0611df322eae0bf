// Package chaos holds netcluster's bounded chaos tests: a real ncserver
// process killed with SIGKILL and restarted under full load while agents
// of this process send and receive numbered messages, whose counts must
// come out exact (none lost, none twice, in order). CI runs them with the
// rest of the tests; together they take well under three minutes.
package chaos
