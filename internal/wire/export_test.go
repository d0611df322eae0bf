package wire

// BufSize returns the size of a Reader's buffer.
func BufSize(r *Reader) int { return r.br.Size() }
