// Package backbone connects a server to a NATS system: it publishes the
// messages local agents emit on channels with propagatetonet, once each,
// and subscribes only to what the local agents can receive. Durable
// channels go through JetStream: a stream per channel and a durable
// consumer per server, acknowledged after local delivery.
//
// New connects in the background (nats.go's own reconnect, forever);
// Send publishes; SetInterest says what the local agents listen to; the
// DeliverFunc given to New receives the other servers' messages. Stats
// reports the connection's state. Close stops everything and waits for
// the goroutines it started.
//
// The subjects and the envelope are documented in docs/PROTOCOL.md
// ("NATS backbone").
package backbone
