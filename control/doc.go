// Package control is netcluster's control protocol: the requests an
// operator sends to a running server on its control channel, their
// replies, and a small client that makes them.
//
// Use [Dial] to connect a [Client] to a server's control socket, and
// [Client.Do] (or the typed calls such as [Client.Stats]) to make
// requests. [Commands] is the one table of the commands: the server
// dispatches from it, and ncclient builds its help and completion from it.
// docs/CONTROL.md describes each request and reply.
//
// The package imports no other part of netcluster than its wire codec and
// its socket transport, so a tool that only talks to the control channel
// does not link the server.
package control
