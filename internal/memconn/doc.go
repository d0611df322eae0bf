// Package memconn provides an in-memory, buffered, full-duplex [net.Conn]
// pair, so that a client in the same process as a server can connect to it
// without a socket.
//
// Use [Pipe] to create the two ends. Unlike [net.Pipe], the pipe is buffered:
// a Write copies its bytes into the peer's receive buffer and returns at
// once, blocking only while that buffer is full (see [WithBufferSize]), and a
// Read returns whatever has arrived. Close, half close ([Conn.CloseWrite])
// and deadlines behave as they do on a TCP connection.
//
// A pair owns no goroutine; deadlines use timers, stopped by Close.
package memconn
