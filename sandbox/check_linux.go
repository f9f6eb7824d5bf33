package sandbox

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
)

// Check probes this host: it starts /bin/true in the six namespaces of
// isolated mode, asks the kernel for its Landlock ABI and seccomp support,
// reads the cgroup controllers and finds the cgroup layer a Runner would
// use (creating and removing one run's cgroup to prove it).
func Check() HostReport {
	rep := checkHost()
	_, rep.Cgroup = detectCgroups(Options{})
	return rep
}

// checkHost is Check without the cgroup layer.
func checkHost() HostReport {
	rep := HostReport{
		OS:              runtime.GOOS,
		Arch:            runtime.GOARCH,
		Root:            os.Geteuid() == 0,
		LandlockABI:     LandlockABI(),
		MinLandlockABI:  MinLandlockABI,
		Seccomp:         seccompAvailable(),
		SeccompDenyList: seccompArch() != 0,
	}
	uid, gid := os.Geteuid(), os.Getegid()
	if rep.Root {
		uid, gid = DefaultHostID, DefaultHostID
	}
	cmd := exec.Command("/bin/true")
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  isolateCloneflags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: gid, Size: 1}},
	}
	cmd.Dir = "/"
	if err := cmd.Run(); err != nil {
		rep.UserNamespacesError = err.Error()
	} else {
		rep.UserNamespaces = true
	}
	// cgroup v2 alone, or the unified hierarchy of a hybrid setup.
	for _, p := range []string{"/sys/fs/cgroup/cgroup.controllers", "/sys/fs/cgroup/unified/cgroup.controllers"} {
		if raw, err := os.ReadFile(p); err == nil {
			rep.CgroupV2 = true
			rep.CgroupControllers = strings.Fields(string(raw))
			break
		}
	}
	if rep.CgroupControllers == nil {
		rep.CgroupControllers = []string{}
	}
	// Controllers mounted as cgroup v1 hierarchies (hierarchy ID > 0).
	rep.CgroupV1Controllers = []string{}
	if raw, err := os.ReadFile("/proc/cgroups"); err == nil {
		for _, line := range strings.Split(string(raw), "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && !strings.HasPrefix(f[0], "#") && f[1] != "0" && f[3] == "1" {
				rep.CgroupV1Controllers = append(rep.CgroupV1Controllers, f[0])
			}
		}
	}
	if !rep.UserNamespaces {
		rep.Problems = append(rep.Problems, "user namespaces: "+rep.UserNamespacesError)
	}
	if rep.LandlockABI < MinLandlockABI {
		rep.Problems = append(rep.Problems, fmt.Sprintf("landlock ABI %d is below the minimum %d", rep.LandlockABI, MinLandlockABI))
	}
	if !rep.Seccomp {
		rep.Problems = append(rep.Problems, "seccomp filters are not available")
	}
	if !rep.SeccompDenyList {
		rep.Problems = append(rep.Problems, "no seccomp deny-list for "+runtime.GOARCH)
	}
	if len(rep.Problems) == 0 {
		rep.Mode = ModeIsolated
	}
	return rep
}
