//go:build linux

package sandbox

import (
	"path/filepath"
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

// CgroupBases lists the base cgroups a Runner with default Options would
// create on this host, existing or not.
func CgroupBases() []string {
	mounts, err := cgroupMounts()
	if err != nil {
		return nil
	}
	own, err := ownCgroups()
	if err != nil {
		return nil
	}
	var bases []string
	if mounts.v2 != "" {
		bases = append(bases, filepath.Join(mounts.v2, own[""], cgroupBase))
	}
	for _, c := range []string{"memory", "pids"} {
		if m := mounts.v1[c]; m != "" {
			bases = append(bases, filepath.Join(m, own[c], cgroupBase))
		}
	}
	return bases
}
