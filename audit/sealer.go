package audit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// SealEvery seals every tenant of s every interval, in a goroutine, until
// the returned stop function is called; stop seals once more (so a worker
// that shuts down leaves no unsealed tail) and waits for the goroutine.
// Errors go to onError (which may be nil). Several workers may seal the
// same store: seals of one tenant are serialized by the store, and a
// tenant with no new events gets no seal. A non-positive interval seals
// only at stop.
func SealEvery(s Store, interval time.Duration, onError func(error)) (stop func()) {
	return SealAndAnchorEvery(s, interval, nil, nil, onError)
}

// SealAndAnchorEvery is SealEvery that also writes every seal it makes to
// anchor (when not nil) and catches the anchor up with seals other
// processes signed with key (RecordSeals, Anchor.CatchUp).
func SealAndAnchorEvery(s Store, interval time.Duration, anchor *Anchor, key *PublicKey, onError func(error)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	seal := func(ctx context.Context) {
		if err := SealAndAnchor(ctx, s, "", anchor, key); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
	}
	if interval > 0 {
		wg.Go(func() {
			t := time.NewTicker(interval)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					seal(ctx)
				}
			}
		})
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			wg.Wait()
			final, done := context.WithTimeout(context.Background(), 5*time.Second)
			defer done()
			seal(final)
		})
	}
}

// SealAndAnchor seals tenant (every tenant when empty) and writes the new
// seals to anchor, then anchors seals of other sealers signed with key.
// A seal written but not anchored is reported by Verify with the anchor,
// so an anchor failure is returned, never ignored.
func SealAndAnchor(ctx context.Context, s Store, tenant string, anchor *Anchor, key *PublicKey) error {
	seals, err := s.Seal(ctx, tenant)
	if anchor == nil {
		return err
	}
	if aerr := anchor.Record(seals...); aerr != nil {
		return errors.Join(err, aerr)
	}
	if err != nil {
		return err
	}
	_, err = anchor.CatchUp(ctx, s, key)
	return err
}
