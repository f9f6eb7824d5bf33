package audit

import (
	"context"
	"time"
)

// The stores' algorithms are written once, over the small driver
// interface below (the shape of River's riverdriver): sealing (sealAll
// and sealNext in seal.go), retention (retainRuns in retention.go) and
// group commit (commitGroup in append.go). Each backend provides the
// primitives in its own SQL (postgres_driver.go, sqlite_driver.go). A
// primitive does one database thing and returns its error bare; the
// order of the steps, the checks and the messages belong to the
// algorithm.

// storeDriver is a backend's side of the shared algorithms.
type storeDriver interface {
	// exclusive returns when the caller may seal or retain, and the
	// function that ends that: SQLite serializes them with this
	// process's appends, Postgres locks per tenant in the transaction
	// (driverTx.lockTenant) instead.
	exclusive() (release func())
	// tenants lists the tenants that have events, ascending.
	tenants(ctx context.Context) ([]string, error)
	// inTx runs fn in one write transaction, committed when fn returns
	// nil and rolled back otherwise.
	inTx(ctx context.Context, fn func(driverTx) error) error
	// sign signs a seal with the store's signer, if any (signerSlot).
	sign(Seal) Seal
	// retainHint is what Retain's error adds after err: how to fix it,
	// or "".
	retainHint(err error) string
}

// driverTx is a backend's primitives inside one transaction.
type driverTx interface {
	// lockTenant makes the transaction the tenant's only writer until it
	// ends: no append of the tenant is in flight, and none commits.
	lockTenant(ctx context.Context, tenant string) error
	// seals returns the tenant's seals by index; only the last one when
	// lastOnly is set.
	seals(ctx context.Context, tenant string, lastOnly bool) ([]Seal, error)
	// eventsAfter returns the largest seq and the number of the tenant's
	// events with seq above from; ok is false when there are none.
	eventsAfter(ctx context.Context, tenant string, from int64) (to, count int64, ok bool, err error)
	// chainHeads returns the last event of each of the tenant's chains
	// among its events with seq in (from, to].
	chainHeads(ctx context.Context, tenant string, from, to int64) ([]ChainHead, error)
	// insertSeal writes s to audit_seals.
	insertSeal(ctx context.Context, s Seal) error

	// retainable returns the tenant's runs (chains) whose every event
	// occurred before before, by workflow ID.
	retainable(ctx context.Context, tenant string, before time.Time) ([]chainStats, error)
	// eachDroppedSeq calls fn with the seq of each event of the tenant's
	// workflows, streaming; an error of fn ends it.
	eachDroppedSeq(ctx context.Context, tenant string, workflows []string, fn func(seq int64) error) error
	// liftDeleteGuard lets the transaction delete the tenant's events;
	// restoreDeleteGuard puts the guard back before commit.
	liftDeleteGuard(ctx context.Context, tenant string) error
	restoreDeleteGuard(ctx context.Context, tenant string) error
	// deleteRuns deletes the events of the tenant's workflows and returns
	// how many it deleted.
	deleteRuns(ctx context.Context, tenant string, workflows []string) (int64, error)
}
