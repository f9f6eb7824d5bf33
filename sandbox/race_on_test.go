//go:build linux && race

package sandbox_test

// raceEnabled: the race detector reserves terabytes of address space for
// its shadow memory, so an attack run with RLIMIT_AS cannot even start.
const raceEnabled = true
