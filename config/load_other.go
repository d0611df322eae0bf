//go:build !unix

package config

import (
	"io/fs"
	"os"
)

// openNonBlocking opens path for reading.
func openNonBlocking(path string) (*os.File, error) { return os.Open(path) }

// mayTraverse allows everything: this platform has no Unix permissions.
func mayTraverse(path string, uid int) error { return nil }

// mayRead allows everything: this platform has no Unix permissions.
func mayRead(path string, fi fs.FileInfo, uid int) error { return nil }
