//go:build linux && !amd64 && !arm64

package sandbox

// modeSyscalls is empty: there is no deny-list for this architecture and
// isolated mode refuses to start (seccompArch returns 0).
var modeSyscalls []modeSyscall

var archDeniedSyscalls []uintptr
