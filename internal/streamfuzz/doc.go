// Package streamfuzz holds the end-to-end fuzzer of the server's socket
// stream (FuzzServerStream). It is a package of its own, not a test file
// of package server, so that the fuzzer's instrumented build leaves out
// what the server's other tests need (an embedded nats-server): CI runs
// every fuzzer for a few seconds, and that build alone took minutes.
package streamfuzz
