// Package chaos holds Warden's chaos tests: runs under load while the
// worker process is killed at random moments. `make test` runs a short
// version; `make chaos` runs the long one (WARDEN_CHAOS_RUNS,
// WARDEN_CHAOS_KILLS) and its results go to RELIABILITY.md.
package chaos
