//go:build !linux && !darwin

package transport

const peerCredSupported = false
