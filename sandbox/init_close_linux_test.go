//go:build linux

package sandbox

import (
	"errors"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCloseFDsSparesTheRuntimeNetpoller closes, in this process, a set of
// descriptors that holds both files the init must drop and the Go
// runtime's own netpoller descriptors (epoll, eventfd). The files must be
// gone and the netpoller must still work: closing its epoll descriptor
// makes the next poll throw "epollwait on fd N failed with 9", which ends
// this test binary (the flake that reverted the first version of this
// wall).
func TestCloseFDsSparesTheRuntimeNetpoller(t *testing.T) {
	// A pipe with a deadline makes sure the netpoller exists.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if err := r.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read before close: %v", err)
	}

	var doomed []int
	for range 3 {
		f, err := os.Open("/proc/self/status")
		if err != nil {
			t.Fatal(err)
		}
		fd, err := unix.Dup(int(f.Fd()))
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		doomed = append(doomed, fd)
	}
	set := append([]int(nil), doomed...)
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	runtimeFDs := 0
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		link, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if link == "anon_inode:[eventpoll]" || link == "anon_inode:[eventfd]" {
			set = append(set, fd)
			runtimeFDs++
		}
	}
	if runtimeFDs == 0 {
		t.Fatal("no netpoller descriptor found: the test would prove nothing")
	}
	if err := closeFDs(set); err != nil {
		t.Fatal(err)
	}
	for _, fd := range doomed {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); !errors.Is(err, unix.EBADF) {
			t.Errorf("descriptor %d still open after closeFDs (%v)", fd, err)
		}
	}
	// The netpoller still answers: a deadline read and a write-read round trip.
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read after close: %v", err)
	}
	if err := r.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go w.Write([]byte{'x'})
	if n, err := r.Read(make([]byte, 1)); n != 1 || err != nil {
		t.Fatalf("round trip after close: %d, %v", n, err)
	}
}
