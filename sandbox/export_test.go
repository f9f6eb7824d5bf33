//go:build linux

package sandbox

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// SeccompProgramForBenchmark is the deny-list as raw struct sock_filter
// bytes, the format bwrap --seccomp reads.
func SeccompProgramForBenchmark() []byte {
	prog := seccompFilter()
	size := int(unsafe.Sizeof(unix.SockFilter{})) * len(prog)
	return append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&prog[0])), size)...)
}
