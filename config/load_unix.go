//go:build unix

package config

import (
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
)

// openNonBlocking opens path for reading without waiting for a writer,
// which opening a FIFO would.
func openNonBlocking(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}

// reader is a user whose file permissions load checks.
type reader struct {
	uid    int
	groups []uint32 // as the user database lists them, primary first
}

func newReader(uid int) reader {
	r := reader{uid: uid}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		ids, _ := u.GroupIds()
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				r.groups = append(r.groups, uint32(g))
			}
		}
	}
	return r
}

// may reports whether r has permission bit (4 read, 1 search) on fi.
func (r reader) may(fi fs.FileInfo, bit fs.FileMode) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == r.uid:
		return perm&(bit<<6) != 0
	case slices.Contains(r.groups, uint32(st.Gid)):
		return perm&(bit<<3) != 0
	}
	return perm&bit != 0
}

// searchable reports the first directory above path that r may not
// search, or "".
func (r reader) searchable(path string) string {
	for dir := filepath.Dir(filepath.Clean(path)); ; {
		if fi, err := os.Stat(dir); err == nil && !r.may(fi, 1) {
			return dir
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}

// mayTraverse refuses path if uid could not search a directory above it,
// before the file is opened.
func mayTraverse(path string, uid int) error {
	if uid == 0 {
		return nil
	}
	if dir := newReader(uid).searchable(path); dir != "" {
		return permissionDenied(path, uid, "no search permission on "+dir)
	}
	return nil
}

// mayRead refuses the opened file fi, found at path, if uid could not read
// it: its own mode, and the directories of its real path.
func mayRead(path string, fi fs.FileInfo, uid int) error {
	if uid == 0 {
		return nil
	}
	r := newReader(uid)
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return permissionDenied(path, uid, "its real path is unknown")
	}
	if rfi, err := os.Stat(real); err != nil || !os.SameFile(rfi, fi) {
		return permissionDenied(path, uid, "it changed while being opened")
	}
	if dir := r.searchable(real); dir != "" {
		return permissionDenied(path, uid, "no search permission on "+dir)
	}
	if !r.may(fi, 4) {
		return permissionDenied(path, uid, "no read permission on the file")
	}
	return nil
}
