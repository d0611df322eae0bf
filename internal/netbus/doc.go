// Package netbus carries message frames between netcluster servers on
// different machines: UDP multicast (or unicast to a list of peers),
// reliable and in order per sending node, optionally sealed with
// XChaCha20-Poly1305.
//
// Use New to start a Bus with a Config (the zero value is valid:
// multicast on DefaultGroup:DefaultPort, plaintext) and a DeliverFunc that
// receives other nodes' frames. Bus.Send queues a frame, tagged with its
// channel name, for every other node (Bus.SendWait waits while the queue
// is full); Bus.Stats reports per-peer delivery, losses and rejected
// datagrams; Bus.Close stops it.
//
// # Delivery
//
// Frames are batched into datagrams of at most Config.Payload bytes; a
// frame too big for one datagram is fragmented and reassembled. Each node
// numbers its datagrams; receivers detect gaps (also at the tail, from
// heartbeats), ask for them with NAKs, and deliver in order per sending
// node. A gap that cannot be filled (the sender no longer holds it, NAKs
// exhausted, or memory bounds reached) is given up: delivery goes on, and
// the exact number of lost messages is counted per peer and logged once per
// burst. Nothing is lost silently. There is no flow control: a sender
// faster than its slowest receiver causes losses, which are counted.
//
// # Security
//
// With Config.Keys set, every datagram is sealed; the header is the
// associated data and supplies the nonce. The first key seals and all keys
// open, so keys rotate without downtime (see Bus.SetKeys). Per-sender
// replay windows refuse datagrams seen before. Forged, tampered, replayed,
// truncated and wrong-key datagrams are dropped and counted by Reason.
// Without keys, traffic is plaintext and anyone on the network can inject
// messages; the caller should warn.
//
// # Transports
//
// The protocol uses a PacketTransport. ListenUDP is the real one
// (multicast with SO_REUSEPORT so several servers share a host, or unicast
// peers). On Linux it sends runs of datagrams of one size in one system
// call with UDP segmentation offload (GSO: the kernel cuts them apart as
// late as it can) and reads coalesced datagrams (GRO), batched with
// sendmmsg and recvmmsg; the datagrams on the wire are the same, and
// elsewhere (or with Config.NoOffload) each datagram is one send.
// Config.NoLoopback spares a host that runs one node its own multicast
// echo. Package memnet provides an in-memory network with deterministic
// loss, duplication and reordering for tests. The wire format is in
// docs/PROTOCOL.md (section 10, "Network datagrams").
package netbus
