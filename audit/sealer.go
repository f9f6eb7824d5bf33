package audit

import (
	"context"
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
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	seal := func(ctx context.Context) {
		if _, err := s.Seal(ctx, ""); err != nil && onError != nil && ctx.Err() == nil {
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
