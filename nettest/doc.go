// Package nettest holds netcluster's multi-host tests: real ncserver
// processes in Linux network namespaces joined by a bridge (see
// internal/netns), agents of this process talking to them through their
// Unix sockets, random loss injected with nftables, and throughput
// measurements of the network layer between namespaces.
//
// The chaos tests (chaos_*_test.go) are the network half of the bounded
// chaos test CI runs: peers coming and going under a numbered stream
// (kill -9 and restart, a late join, a clean leave, a cut-off and
// reconnection), and an attacker host on the bridge that forges, replays
// and floods datagrams, built from docs/PROTOCOL.md rather than with
// package netbus. Counts are exact; the stream pauses at each change so
// the message numbers around it are known.
//
// The tests need root and NETCLUSTER_NETNS=1; otherwise they skip with a
// message starting with "NETNS-SKIP". Run them with:
//
//	NETCLUSTER_NETNS=1 go test -v -count=1 ./nettest/
//
// Nothing here touches the machine's real network: every address
// (10.99.0.0/24) and every multicast datagram lives inside the test's own
// namespaces, which are removed at the end even when a test fails.
package nettest
