//go:build !unix

package systemd

func monotonicUsec() (int64, bool) { return 0, false }
