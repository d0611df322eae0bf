//go:build !unix

package systemd

import "errors"

func closeOnExec(int) error {
	return errors.New("socket activation is not supported on this platform")
}
