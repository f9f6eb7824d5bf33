// Package chaos holds Warden's chaos tests: runs under load while a part
// of the stack fails — the worker process SIGKILLed at random
// (TestWorkerKilledAtRandom), the audit PostgreSQL restarted and crashed
// (TestPostgresRestartedMidRun, on a private cluster), the Temporal server
// killed and restarted on its database file (TestTemporalRestartedMidRun),
// and a model endpoint failing in every way a provider does
// (TestModelFaultsUnderLoad). `make test` runs a short version of each;
// `make chaos` runs the long ones (sized by WARDEN_CHAOS_* variables) and
// their results go to RELIABILITY.md.
package chaos
