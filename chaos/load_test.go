package chaos_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/tools"
)

// demoLoad starts demo runs (an allowed shell, a denied rm, an approved
// non-idempotent refund) at a steady pace, approves whatever waits, and
// collects the results, riding out a server that comes and goes.
type demoLoad struct {
	c      *client.Client
	tenant string
	prefix string

	mu      sync.Mutex
	ids     []string
	results map[string]warden.RunResult
	errs    map[string]error
	wg      sync.WaitGroup
}

func newDemoLoad(c *client.Client, tenant, prefix string) *demoLoad {
	return &demoLoad{c: c, tenant: tenant, prefix: prefix, results: map[string]warden.RunResult{}, errs: map[string]error{}}
}

// start starts n runs, one every gap, and returns when the last started.
// Each run's result is awaited in its own goroutine.
func (l *demoLoad) start(ctx context.Context, t *testing.T, n int, gap time.Duration) {
	t.Helper()
	for i := range n {
		if i > 0 {
			time.Sleep(gap)
		}
		id := fmt.Sprintf("%s-%d", l.prefix, i)
		req := warden.RunRequest{Tenant: l.tenant, Requester: "dana", Goal: "chaos", Model: "scripted/demo"}
		// The server may be down for a moment: starting is idempotent by ID.
		require.NoError(t, retry(ctx, func() error {
			_, err := l.c.Start(ctx, req, client.StartOptions{ID: id})
			return err
		}), id)
		l.mu.Lock()
		l.ids = append(l.ids, id)
		l.mu.Unlock()
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			var res warden.RunResult
			err := retry(ctx, func() error {
				var err error
				res, err = l.c.Result(ctx, id)
				var wfErr *temporal.WorkflowExecutionError
				if errors.As(err, &wfErr) {
					return permanent{err}
				}
				return err
			})
			l.mu.Lock()
			defer l.mu.Unlock()
			if err != nil {
				l.errs[id] = err
				return
			}
			l.results[id] = res
		}()
	}
}

// inFlight counts the runs started and not yet finished.
func (l *demoLoad) inFlight() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.ids) - len(l.results) - len(l.errs)
}

// approve approves every pending request until ctx ends.
func (l *demoLoad) approve(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		l.mu.Lock()
		var ids []string
		for _, id := range l.ids {
			if _, ok := l.results[id]; !ok {
				ids = append(ids, id)
			}
		}
		l.mu.Unlock()
		for _, id := range ids {
			ps, err := l.c.PendingApprovals(ctx, id)
			if err != nil {
				continue
			}
			for _, p := range ps {
				_, _ = l.c.Decide(ctx, id, warden.ApprovalDecision{RequestID: p.RequestID, Decision: "approve", Approver: "alice"})
			}
		}
	}
}

// wait returns once every run has a result, failing the test on any run
// that could not be awaited.
func (l *demoLoad) wait(t *testing.T) map[string]warden.RunResult {
	t.Helper()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, err := range l.errs {
		require.NoError(t, err, id)
	}
	return l.results
}

// permanent marks an error retry must not retry.
type permanent struct{ error }

// retry calls f until it succeeds, returns a permanent error, or ctx ends.
func retry(ctx context.Context, f func() error) error {
	for {
		err := f()
		if err == nil {
			return nil
		}
		var p permanent
		if errors.As(err, &p) {
			return p.error
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// demoCounts is what checkDemoRuns found.
type demoCounts struct {
	runs, completed          int
	refundsExecuted, unknown int
	ledger                   int
	events                   int64
	chains                   int
	// refundNotInLedger counts unknown outcomes whose refund never happened.
	refundNotInLedger int
	// shellUnknown counts shell calls whose outcome was reported unknown.
	shellUnknown int
	// resultLost counts calls that ran and recorded tool_executed, but
	// whose result never reached the run, which reported them unknown.
	resultLost int
}

// checkDemoRuns checks the demo runs' outcomes against the audit log and
// the refund ledger: every run completed; every chain verifies; each run
// holds exactly the events its steps imply, none twice; every refund in
// the ledger happened once, and each run either reports its refund
// executed (and it is in the ledger) or reports the outcome unknown.
func checkDemoRuns(ctx context.Context, t *testing.T, store audit.Store, tenant string, results map[string]warden.RunResult, ledgerPath string) demoCounts {
	t.Helper()
	report, err := audit.Verify(ctx, store, audit.VerifyOptions{Tenant: tenant})
	require.NoError(t, err)
	require.Empty(t, report.Breaks, "every audit chain verifies")
	require.Equal(t, len(results), report.Chains, "one chain per run")

	ledger, err := tools.ReadLedger(ledgerPath)
	if err != nil && !os.IsNotExist(err) {
		require.NoError(t, err)
	}
	inLedger := map[string]int{}
	for _, e := range ledger {
		inLedger[e.IdempotencyKey]++
	}
	for key, n := range inLedger {
		require.Equal(t, 1, n, "refund %s happened %d times", key, n)
	}

	counts := demoCounts{runs: len(results), ledger: len(ledger), events: report.Events, chains: report.Chains}
	for id, res := range results {
		require.Equal(t, warden.StatusCompleted, res.Status, "%s: %+v", id, res)
		counts.completed++
		evs, err := store.Query(ctx, warden.AuditFilter{Tenant: tenant, WorkflowID: id, Limit: audit.MaxQueryLimit})
		require.NoError(t, err)
		seen := map[string]bool{}
		n := map[warden.EventType]int{}
		// per call: 's'tarted, 'e'xecuted, 'u'nknown outcome
		calls := map[string]map[byte]int{}
		for _, e := range evs {
			key := fmt.Sprintf("%s/%d/%s/%s/%s", e.Type, e.Step, e.CallID, e.Actor, e.RequestID)
			// An approver retrying a decision the run already applied is
			// refused and audited each time: those may repeat.
			if e.Type == warden.EventApprovalRefused {
				continue
			}
			// A Plan retried after a lost attempt (a Temporal restart, a
			// killed worker) called the model again and records that
			// attempt's call and decisions under attempt-N event IDs: said
			// so, not a duplicate.
			if seen[key] && planRetryRecord(e) {
				continue
			}
			require.False(t, seen[key], "%s: duplicate audit event %s", id, key)
			seen[key] = true
			n[e.Type]++
			if calls[e.CallID] == nil {
				calls[e.CallID] = map[byte]int{}
			}
			switch e.Type {
			case warden.EventToolStarted:
				calls[e.CallID]['s']++
			case warden.EventToolExecuted:
				calls[e.CallID]['e']++
			case warden.EventToolOutcomeUnknown:
				calls[e.CallID]['u']++
			}
		}
		// Both tools that run (shell and issue_refund) are non-idempotent:
		// one attempt each, tool_started before it, then tool_executed, or
		// tool_outcome_unknown when the attempt ended without a result
		// reaching the run — or both, when the tool ran and recorded its
		// result but the completion never reached the workflow (the
		// Temporal server died with it). tool_started is missing only when
		// the attempt died before it could write it.
		executed, unknown, started, reported := 0, 0, 0, 0
		for _, call := range []string{shellCall, refundCall} {
			c := calls[call]
			require.GreaterOrEqual(t, c['e']+c['u'], 1, "%s: %s neither executed nor reported unknown: %v\n%s", id, call, c, describe(evs))
			require.LessOrEqual(t, c['s'], 1, "%s: %s", id, call)
			if c['e'] == 1 {
				require.Equal(t, 1, c['s'], "%s: %s executed without tool_started\n%s", id, call, describe(evs))
			}
			if c['e'] == 1 && c['u'] == 1 {
				counts.resultLost++
			}
			if c['u'] == 0 {
				reported++
			}
			executed += c['e']
			unknown += c['u']
			started += c['s']
		}
		refund := calls[refundCall]['e']
		// The events the demo's two steps imply: three calls requested and
		// decided (shell allowed, rm denied, refund approved), the approval,
		// the two runs.
		want := map[warden.EventType]int{
			warden.EventRunStarted:         1,
			warden.EventModelCalled:        res.Steps,
			warden.EventToolRequested:      3,
			warden.EventPolicyDecided:      3,
			warden.EventApprovalRequested:  1,
			warden.EventApprovalDecided:    1,
			warden.EventApprovalIdentities: 1,
			warden.EventToolStarted:        started,
			warden.EventToolExecuted:       executed,
			warden.EventToolOutcomeUnknown: unknown,
			warden.EventRunFinished:        1,
		}
		for typ, k := range want {
			if k == 0 {
				delete(want, typ)
			}
		}
		require.Equal(t, want, n, "%s: audit events by type (result %+v)", id, res)
		require.Equal(t, 2, res.Steps, "%s: the demo takes two model calls", id)
		require.Equal(t, reported, res.ToolCalls["executed"], "%s: the run reports what the audit says ran: %+v", id, res.ToolCalls)
		require.Equal(t, unknown, res.ToolCalls["outcome_unknown"], "%s: %+v", id, res.ToolCalls)
		counts.shellUnknown += calls[shellCall]['u']
		key := refundKey(id)
		if refund == 1 {
			require.Equal(t, 1, inLedger[key], "%s: an executed refund is in the ledger", id)
		}
		if calls[refundCall]['u'] == 0 {
			counts.refundsExecuted++
		} else {
			counts.unknown++
			if inLedger[key] == 0 {
				counts.refundNotInLedger++
			}
		}
	}
	require.LessOrEqual(t, len(ledger), len(results), "at most one refund per run")
	return counts
}

// The scripted demo's calls that run: the first and third of its first turn.
const (
	shellCall  = "call_0_0"
	refundCall = "call_0_2"
)

// refundKey is the idempotency key of a demo run's refund (step 1).
func refundKey(workflowID string) string {
	return activities.IdempotencyKey(workflowID, 1, refundCall)
}

// waitStarted waits until at least n runs have started.
func (l *demoLoad) waitStarted(n int) {
	for {
		l.mu.Lock()
		started := len(l.ids)
		l.mu.Unlock()
		if started >= n {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitInFlight waits until at least n runs are in flight, or for at most d.
func (l *demoLoad) waitInFlight(n int, d time.Duration) {
	deadline := time.Now().Add(d)
	for l.inFlight() < n && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
}

// describe lists events one a line, for a failing check's message.
func describe(evs []warden.AuditEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "  %s step %d %s %s by %s: %s\n", e.OccurredAt.Format("15:04:05.000"), e.Step, e.CallID, e.Type, e.Actor, e.Message)
	}
	return b.String()
}

// restart is one outage a restart test injected.
type restart struct {
	how      string
	at       time.Time
	inFlight int
	took     time.Duration // from the stop until the service was back
	err      error
}

// restartDuring injects n outages spread over the load's runs starts (each
// after a share of the runs started, a random pause of up to gap, and with
// at least two runs in flight), so each meets runs mid-step and more start
// after it. outage(i) stops and restarts the service and says how. The
// channel gets the outages once all are done, or after the first that
// failed.
func (l *demoLoad) restartDuring(runs, n int, gap time.Duration, outage func(i int) (how string, err error)) <-chan []restart {
	out := make(chan []restart, 1)
	go func() {
		var done []restart
		for i := range n {
			l.waitStarted((i + 1) * runs / (n + 1))
			time.Sleep(time.Duration(rand.Int64N(int64(gap) + 1)))
			l.waitInFlight(2, 5*time.Second)
			r := restart{inFlight: l.inFlight(), at: time.Now()}
			r.how, r.err = outage(i)
			r.took = time.Since(r.at)
			done = append(done, r)
			if r.err != nil {
				break
			}
		}
		out <- done
	}()
	return out
}

// planRetryRecord reports whether e is a retried Plan attempt's own
// record: its ID is the attempt-N form of its plain event ID.
func planRetryRecord(e warden.AuditEvent) bool {
	switch e.Type {
	case warden.EventModelCalled, warden.EventToolRequested, warden.EventPolicyDecided, warden.EventApprovalRequested:
	default:
		return false
	}
	for n := 1; n <= 50; n++ {
		// attempt-N: a retried Plan's records; taint-N: a later call of an
		// answer decided again after an earlier one tainted the run.
		for _, rev := range []string{"attempt-%d", "taint-%d"} {
			if e.ID == warden.EventID(e.WorkflowID, e.RunID, e.Step, e.CallID, e.Type, fmt.Sprintf(rev, n)) {
				return true
			}
		}
	}
	return false
}
