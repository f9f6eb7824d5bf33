// The Activities value and what every stage shares: the run and call
// references (RunRef, CallRef), the policy input built for Authorize and
// Execute, and the heartbeat of long activities.

package activities

import (
	"cmp"
	"context"
	"encoding/json"
	"sync"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/bounded"
	"github.com/wardenhq/warden/internal/govern"
)

// Activities holds the dependencies of every Warden activity. Register one
// value with the worker; workflows call its methods through a nil pointer.
type Activities struct {
	Model  Model
	Policy Policy
	Tools  Tools
	Audit  Audit
	// WorkspaceRoot is the folder under which each run gets its workspace
	// (<root>/<tenant>/<workflow id>).
	WorkspaceRoot string
	// Namespace is the Temporal namespace of the worker's runs, written in
	// each workspace's record so a sweeper of another namespace sharing the
	// folder leaves it alone.
	Namespace string
	// SandboxMode is reported to policies (PolicyInput.SandboxMode).
	SandboxMode string
	// DefaultModel is used when a run names none.
	DefaultModel string
	// HeartbeatEvery is how often Execute heartbeats while a tool runs. Default 2s.
	HeartbeatEvery time.Duration
	// Escalations receives approval requests that stay pending too long; nil
	// means none is configured.
	Escalations Escalations
	// History resolves approvals' transport identities; nil leaves them "unknown".
	History History
	// Prices prices model calls; nil means every call costs nothing.
	Prices Prices
	// ModelPolicy checks each model before use; nil allows every model.
	ModelPolicy ModelPolicy
	// Payloads keeps conversations by reference; nil sends them inline.
	Payloads Payloads

	// convOnce makes convCache, the loaded conversations (conversation.go).
	convOnce  sync.Once
	convCache *bounded.Map[string, []warden.Message]
}

// RunRef identifies the run an activity works for (the run of a
// governance decision).
type RunRef = govern.Run

// CallRef names one tool call of a run, for logs and audit rows written
// outside the activity (the egress proxy's connection log).
type CallRef struct {
	Run    RunRef `json:"run"`
	Step   int    `json:"step"`
	CallID string `json:"call_id"`
}

// String encodes the reference (JSON).
func (c CallRef) String() string {
	b, _ := json.Marshal(c)
	return string(b)
}

// ParseCallRef decodes CallRef.String.
func ParseCallRef(s string) (CallRef, bool) {
	var c CallRef
	if err := json.Unmarshal([]byte(s), &c); err != nil || c.Run.WorkflowID == "" || c.Run.Tenant == "" {
		return CallRef{}, false
	}
	return c, true
}

// heartbeat records heartbeats until the returned function is called.
func (a *Activities) heartbeat(ctx context.Context) func() {
	every := cmp.Or(a.HeartbeatEvery, 2*time.Second)
	done := make(chan struct{})
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				activity.RecordHeartbeat(ctx)
			}
		}
	}()
	return func() { close(done) }
}
