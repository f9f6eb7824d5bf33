package worker

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/internal/bounded"
	"github.com/wardenhq/warden/workflows"
)

// Bounds of the refusal recorder: how many rows may wait for the store, and
// how many runs' refusal counts are kept (the least recently refused run's
// count is forgotten first, and its next refusal is audited in full again).
const (
	refusalQueue = 4096
	refusalRuns  = 8192
)

// RefusalRecorder writes the approval_refused rows of approve Updates that
// the workflow's validator refused. A refused Update leaves nothing in the
// workflow's history, so without it an attacker could try names, requests
// and payloads against a run with nothing on the record. Rows are queued
// (the validator must not block) and written by one goroutine, retried
// until the store takes them or the recorder closes; each run's refusals
// are audited like refused Signals (workflows.RefusalAudited): the first
// ones in full, then in summary. A row the full queue cannot take is
// counted, logged and named in the next row written.
type RefusalRecorder struct {
	store   audit.Store
	log     *slog.Logger
	queue   chan warden.AuditEvent
	mu      sync.Mutex
	counts  *bounded.Map[string, int]
	dropped atomic.Int64
	pending atomic.Int64 // queued or being written
	cancel  context.CancelFunc
	done    chan struct{}
}

// NewRefusalRecorder starts a recorder writing to store. Close it before
// the store.
func NewRefusalRecorder(store audit.Store, log *slog.Logger) *RefusalRecorder {
	ctx, cancel := context.WithCancel(context.Background())
	r := &RefusalRecorder{
		store:  store,
		log:    log,
		queue:  make(chan warden.AuditEvent, refusalQueue),
		counts: bounded.New[string, int](refusalRuns),
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go r.write(ctx)
	return r
}

// Interceptor attaches the recorder to the approve Update's validator of
// every workflow the worker runs.
func (r *RefusalRecorder) Interceptor() interceptor.WorkerInterceptor {
	return &refusalInterceptor{rec: r}
}

// Offer queues the row of one refused Update; it never blocks.
func (r *RefusalRecorder) Offer(ev warden.AuditEvent) {
	key := ev.WorkflowID + "\x00" + ev.RunID
	r.mu.Lock()
	n, _ := r.counts.Get(key)
	n++
	r.counts.Put(key, n)
	r.mu.Unlock()
	own, summary := workflows.RefusalAudited(n)
	if !own && !summary {
		return
	}
	if summary {
		workflows.SummariseRefusal(&ev, n)
	}
	r.pending.Add(1)
	select {
	case r.queue <- ev:
	default:
		r.pending.Add(-1)
		d := r.dropped.Add(1)
		r.log.Error("approval refusal not audited: the refusal queue is full", "workflow_id", ev.WorkflowID, "run_id", ev.RunID, "dropped", d)
	}
}

// Flush waits until every queued row is written or ctx ends.
func (r *RefusalRecorder) Flush(ctx context.Context) error {
	for r.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}

// Close writes what is queued (for up to five seconds) and stops.
func (r *RefusalRecorder) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.Flush(ctx); err != nil {
		r.log.Error("approval refusals not audited at close", "queued", r.pending.Load())
	}
	r.cancel()
	<-r.done
}

func (r *RefusalRecorder) write(ctx context.Context) {
	defer close(r.done)
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-r.queue:
			if d := r.dropped.Swap(0); d > 0 {
				ev.Message += " [the worker's refusal queue was full: " + strconv.FormatInt(d, 10) + " earlier refused Updates are not audited]"
			}
			r.append(ctx, ev)
			r.pending.Add(-1)
		}
	}
}

// append retries until the store takes ev, the event is invalid, or ctx
// ends.
func (r *RefusalRecorder) append(ctx context.Context, ev warden.AuditEvent) {
	wait := 100 * time.Millisecond
	for {
		err := r.store.Append(ctx, ev)
		if err == nil {
			return
		}
		if errors.Is(err, audit.ErrInvalidEvent) || ctx.Err() != nil {
			r.log.Error("approval refusal not audited", "event_id", ev.ID, "workflow_id", ev.WorkflowID, "error", err)
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
		wait = min(2*wait, 10*time.Second)
	}
}

type refusalInterceptor struct {
	interceptor.WorkerInterceptorBase
	rec *RefusalRecorder
}

func (i *refusalInterceptor) InterceptWorkflow(ctx workflow.Context, next interceptor.WorkflowInboundInterceptor) interceptor.WorkflowInboundInterceptor {
	return &refusalInbound{WorkflowInboundInterceptorBase: interceptor.WorkflowInboundInterceptorBase{Next: next}, rec: i.rec}
}

type refusalInbound struct {
	interceptor.WorkflowInboundInterceptorBase
	rec *RefusalRecorder
}

func (in *refusalInbound) ValidateUpdate(ctx workflow.Context, u *interceptor.UpdateInput) error {
	return in.Next.ValidateUpdate(workflows.WithRefusalSink(ctx, in.rec.Offer), u)
}
