// Package chaos holds netcluster's bounded chaos tests: a real ncserver
// process killed with SIGKILL and restarted under full load while agents
// of this process, and sender processes (this test binary run again, see
// sender_test.go), send and receive numbered messages, whose counts must
// come out exact (none lost, none twice, in order), and a receiver must be
// told of the sender killed with the server and of no other. CI runs them
// with the rest of the tests; together they take well under three minutes.
package chaos
