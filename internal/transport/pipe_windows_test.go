package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"
)

// These tests are compiled in CI (GOOS=windows go test -c) but have not been
// run on a Windows machine yet.

func pipePath(t *testing.T) string {
	return SocketPath("ignored", fmt.Sprintf("test-%d-%s", os.Getpid(), strings.ReplaceAll(t.Name(), "/", "-")))
}

func TestSocketPathWindows(t *testing.T) {
	if got, want := SocketPath(`C:\x`, "A"), `\\.\pipe\netcluster-A`; got != want {
		t.Errorf("SocketPath = %q, want %q", got, want)
	}
}

func TestPipeRoundTrip(t *testing.T) {
	path := pipePath(t)
	ln, err := Listen(path, ListenConfig{Group: "S-1-5-32-545"}) // BUILTIN\Users
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, io.LimitReader(c, 5))
		done <- err
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "hello" {
		t.Fatalf("echo = %q, %v", buf, err)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}

func TestPipeInUse(t *testing.T) {
	path := pipePath(t)
	ln, err := Listen(path, ListenConfig{})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	}()
	_, err = Listen(path, ListenConfig{})
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), path) {
		t.Fatalf("second Listen: err = %v, want ErrInUse naming %s", err, path)
	}
}

func TestPipeDialNoServer(t *testing.T) {
	path := pipePath(t)
	_, err := Dial(context.Background(), path)
	if !errors.Is(err, ErrNoServer) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want ErrNoServer and fs.ErrNotExist naming %s", err, path)
	}
}

func TestPipeBadGroup(t *testing.T) {
	_, err := Listen(pipePath(t), ListenConfig{Group: "no-such-group-netcluster"})
	if err == nil || !strings.Contains(err.Error(), "no-such-group-netcluster") {
		t.Fatalf("err = %v, want an error naming the group", err)
	}
}
