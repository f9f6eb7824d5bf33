// Helpers of the parked-runs benchmark: progress lines, waiting until runs park, and bounded fan-out.

package bench

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/api/workflowservice/v1"
	"go.temporal.io/sdk/client"

	"github.com/wardenhq/warden"
)

// progress writes line(elapsed) to w every interval until the returned
// function is called, which writes it a last time. A nil w writes nothing.
func progress(w io.Writer, every time.Duration, line func(elapsed time.Duration) string) (stop func()) {
	if w == nil {
		return func() {}
	}
	start := time.Now()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(w, line(time.Since(start)))
				return
			case <-t.C:
				fmt.Fprintln(w, line(time.Since(start)))
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// waitParked polls visibility until n runs of the queue wait for
// approval, keeping the latest count in parked.
func waitParked(ctx context.Context, c client.Client, queue string, n int, parked *atomic.Int64) error {
	q := fmt.Sprintf("TaskQueue = %q AND %s = %q", queue, warden.SearchAttrStatus, warden.SearchStatus(warden.StatusAwaitingApproval))
	deadline := time.Now().Add(time.Duration(n)*50*time.Millisecond + 2*time.Minute)
	for time.Now().Before(deadline) {
		resp, err := c.CountWorkflow(ctx, &workflowservice.CountWorkflowExecutionsRequest{Query: q})
		if err != nil {
			return fmt.Errorf("count parked runs: %w", err)
		}
		parked.Store(resp.GetCount())
		if resp.GetCount() >= int64(n) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("only %d of %d runs were waiting for approval before the deadline", parked.Load(), n)
}

// each calls f for every id with at most conc calls at once and returns
// the ids for which f succeeded, in order.
func each(ctx context.Context, ids []string, conc int, f func(context.Context, string) error) []string {
	sem := make(chan struct{}, conc)
	okay := make([]bool, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			okay[i] = f(ctx, id) == nil
		})
	}
	wg.Wait()
	var out []string
	for i, id := range ids {
		if okay[i] {
			out = append(out, id)
		}
	}
	return out
}
