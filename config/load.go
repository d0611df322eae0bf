package config

import (
	"fmt"
	"io"
	"os"
)

// MaxFileSize bounds the size of a configuration file Load reads.
const MaxFileSize = 1 << 20

// Load reads the configuration file at path; see [Parse]. The result's
// Source is path. It refuses anything but a regular file of at most
// MaxFileSize bytes, so a control request naming a FIFO or a device can
// neither hang the server nor exhaust its memory: the file is opened
// without blocking (O_NONBLOCK) and checked once open, so a path swapped
// to a FIFO after any earlier look cannot block it either. Symbolic links
// are followed.
func Load(path string) (*Config, error) {
	return load(path, nil, nil)
}

// LoadAs is Load on behalf of the user with the given uid, such as the
// sender of a control request: a file that user could not read
// themselves is refused, without reading or quoting it, with an error
// wrapping fs.ErrPermission. "Could read" follows the Unix rules: search
// permission on every directory of path and of the file's real path, and
// read permission on the file, by its owner, group (the user's groups, as
// the user database lists them) and mode; root may read anything. On
// platforms without Unix permissions (Windows) it is Load.
func LoadAs(path string, uid int) (*Config, error) {
	return load(path, &uid, nil)
}

// load is Load, checking what uid could read if it is not nil. A test
// sets beforeOpen to change the file just before it is opened.
func load(path string, uid *int, beforeOpen func()) (*Config, error) {
	if uid != nil {
		if err := mayTraverse(path, *uid); err != nil {
			return nil, err
		}
	}
	if beforeOpen != nil {
		beforeOpen()
	}
	f, err := openNonBlocking(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if uid != nil {
		if err := mayRead(path, fi, *uid); err != nil {
			return nil, err
		}
	}
	switch {
	case !fi.Mode().IsRegular():
		return nil, fmt.Errorf("config: %s: not a regular file", path)
	case fi.Size() > MaxFileSize:
		return nil, fmt.Errorf("config: %s: %d bytes; a config file may have at most %d", path, fi.Size(), MaxFileSize)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", path, MaxFileSize)
	}
	return Parse(data, path)
}

// permissionDenied is the error for a file uid could not read.
func permissionDenied(path string, uid int, why string) error {
	return fmt.Errorf("config: %s: uid %d may not read it (%s), so it is not read for them: %w",
		path, uid, why, os.ErrPermission)
}
