package netcluster

// The send buffer's chunks. While the writer is busy (the server reads
// slower than Emit writes), Emit does not grow out by copying it into
// ever larger arrays: once out holds sealMin bytes and the next frame
// does not fit, out is queued whole for the writer (queued) and Emit goes
// on in a chunk of outChunk bytes. The writer takes the queued buffers
// first, one per write, and a chunk the server has acknowledged (or that
// the writer wrote, on a connection without acknowledgements) comes back
// to the agent's pool for a later one: a busy stream allocates nothing,
// and out never grows past a chunk.

const (
	// outChunk is the capacity of a chunk.
	outChunk = 64 << 10
	// sealMin is how much out holds before a frame that does not fit
	// queues it rather than grow it (smaller buffers grow by append, as
	// an idle agent's few frames need no chunk).
	sealMin = 4 << 10
)

// maxChunks is how many emptied chunks the agent keeps: as many as its
// buffer holds, so a stream that fills it allocates none.
func (a *Agent) maxChunks() int { return max(maxFree, a.opts.bufferSize/outChunk) }

// outLen is how many bytes wait for the writer: queued, then out. Call
// with mu held.
func (a *Agent) outLen() int { return a.queuedBytes + len(a.out) }

// roomOut makes sure a frame of size bytes fits in out without growing a
// buffer of sealMin bytes or more: such an out is queued for the writer
// and out becomes a chunk. Call with mu held.
func (a *Agent) roomOut(size int) {
	if len(a.out)+size <= cap(a.out) || len(a.out) < sealMin {
		return
	}
	a.queued = append(a.queued, sentBatch{buf: a.out, last: a.outLast})
	a.queuedBytes += len(a.out)
	a.outLast = 0
	a.out = a.chunk(size)
}

// chunk returns an empty chunk for a frame of size bytes: from the pool,
// or a new one (as large as the frame, if it is larger). Call with mu
// held.
func (a *Agent) chunk(size int) []byte {
	if size <= outChunk && len(a.chunks) > 0 {
		c := a.chunks[len(a.chunks)-1]
		a.chunks[len(a.chunks)-1] = nil
		a.chunks = a.chunks[:len(a.chunks)-1]
		return c
	}
	return make([]byte, 0, max(outChunk, size))
}

// takeQueued hands the writer the oldest queued buffer, if any. Call with
// mu held.
func (a *Agent) takeQueued() (sentBatch, bool) {
	if len(a.queued) == 0 {
		return sentBatch{}, false
	}
	b := a.queued[0]
	n := copy(a.queued, a.queued[1:])
	a.queued[n] = sentBatch{}
	a.queued = a.queued[:n]
	a.queuedBytes -= len(b.buf)
	return b, true
}

// unqueue returns dst with the queued buffers' frames appended, then
// out's (after a failed write, before a reconnection), empties queued and
// sets outLast to the last number of them all; the caller makes the
// result out. Call with mu held.
func (a *Agent) unqueue(dst []byte) []byte {
	if len(a.queued) == 0 {
		return append(dst, a.out...)
	}
	for _, b := range a.queued {
		dst = append(dst, b.buf...)
		a.recycle(b.buf)
	}
	// The messages of out are numbered after the queued ones: the last
	// of them all is out's, if out has any.
	last := a.outLast
	if last == 0 {
		for i := len(a.queued) - 1; i >= 0 && last == 0; i-- {
			last = a.queued[i].last
		}
	}
	a.outLast = last
	clear(a.queued)
	a.queued, a.queuedBytes = a.queued[:0], 0
	return append(dst, a.out...)
}
