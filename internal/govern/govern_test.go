package govern_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/govern"
	"github.com/wardenhq/warden/policies"
	"github.com/wardenhq/warden/tools"
)

// The real default bundle and the real built-in tool specs and schemas:
// every rule below is the one the worker applies, in milliseconds.
var (
	bundle   *policies.Engine
	granted  *policies.Engine // the default bundle granting example.com:443
	registry *tools.Registry
)

func TestMain(m *testing.M) {
	var err error
	if bundle, err = policies.New(context.Background(), policies.Options{}); err != nil {
		panic(err)
	}
	dir, err := os.MkdirTemp("", "govern-bundle-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	if err := policies.WriteBundle(dir); err != nil {
		panic(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "warden", "network"), 0o755); err != nil {
		panic(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "warden", "network", "data.json"), []byte(`{"allowed_hosts":["example.com:443"]}`), 0o644); err != nil {
		panic(err)
	}
	if granted, err = policies.New(context.Background(), policies.Options{Dir: dir}); err != nil {
		panic(err)
	}
	if registry, err = tools.NewRegistry(tools.Options{}); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func turn() govern.Turn {
	return govern.Turn{
		Run:         govern.Run{Tenant: "acme", Requester: "rita", WorkflowID: "wf-1", RunID: "run-2", ChainID: "run-1"},
		Step:        3,
		SandboxMode: warden.SandboxIsolated,
		ArgsForm:    warden.ArgsFormCanonical,
	}
}

func call(name, args string) warden.ToolCall {
	return warden.ToolCall{ID: "call-1", Name: name, Args: json.RawMessage(args)}
}

const refund = `{"order_id":"1234","amount_cents":25000,"currency":"USD","reason":"parcel lost"}`

func TestAuthorizeRules(t *testing.T) {
	t.Parallel()
	tainted := turn()
	tainted.Taint = []string{"tool:shell"}
	process := turn()
	process.SandboxMode = warden.SandboxProcess
	tests := []struct {
		name    string
		call    warden.ToolCall
		turn    govern.Turn
		verdict govern.Verdict
		message string
		policy  govern.Policy
	}{
		{"a read is allowed", call("read_file", `{"path":"notes.txt"}`), turn(), govern.Allow, "", nil},
		{"arguments outside the schema are refused before the policy", call("read_file", `{"path":"a","mode":"x"}`), turn(), govern.InvalidArgs, "invalid arguments for read_file", nil},
		{"arguments that are not JSON are refused", call("read_file", `{"path":`), turn(), govern.InvalidArgs, "invalid arguments for read_file", nil},
		{"an unknown tool is denied and the model told what exists", call("launch", `{}`), turn(), govern.Deny, `unknown tool "launch"; available tools: http_get, issue_refund, read_file, shell, write_file.`, nil},
		{"a refund needs approval", call("issue_refund", refund), turn(), govern.RequireApproval, "", nil},
		{"a dangerous command is denied", call("shell", `{"argv":["rm","-rf","/"]}`), turn(), govern.Deny, "denied by policy", nil},
		{"a granted host is allowed", call("http_get", `{"url":"https://example.com/"}`), turn(), govern.Allow, "", granted},
		{"a host not granted is denied", call("http_get", `{"url":"https://example.org/"}`), turn(), govern.Deny, "is not granted", granted},
		{"a granted host needs approval once the run is tainted", call("http_get", `{"url":"https://example.com/"}`), tainted, govern.RequireApproval, "", granted},
		{"an exec tool is denied in process mode", call("shell", `{"argv":["ls"]}`), process, govern.Deny, "denied by policy", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			policy := tt.policy
			if policy == nil {
				policy = bundle
			}
			z := govern.Authorize(t.Context(), policy, registry, tt.call, tt.turn)
			require.Equal(t, tt.verdict, z.Verdict, "%+v", z)
			require.Contains(t, z.Message, tt.message)
			if tt.verdict == govern.RequireApproval {
				require.Equal(t, govern.RequestID(tt.turn, tt.call, z.ArgsHash, z.Decision.PolicyRevision), z.RequestID)
			} else {
				require.Empty(t, z.RequestID)
			}
		})
	}
}

// failingPolicy fails every decision.
type failingPolicy struct{}

func (failingPolicy) Decide(context.Context, warden.PolicyInput) (warden.Decision, error) {
	return warden.Decision{Allow: true}, errors.New("bundle gone")
}

func TestAPolicyErrorDenies(t *testing.T) {
	t.Parallel()
	z := govern.Authorize(t.Context(), failingPolicy{}, registry, call("read_file", `{"path":"a"}`), turn())
	require.Equal(t, govern.Deny, z.Verdict)
	require.Contains(t, z.Message, "policy evaluation failed: bundle gone")
	_, err := govern.Enforce(t.Context(), failingPolicy{}, registry, call("read_file", `{"path":"a"}`), turn(), nil)
	require.ErrorIs(t, err, govern.ErrRefused)
}

func TestRequestIDBindsEveryPart(t *testing.T) {
	t.Parallel()
	base := turn()
	c := call("issue_refund", refund)
	id := govern.RequestID(base, c, "h", "rev")
	other := func(f func(*govern.Turn, *warden.ToolCall, *string, *string)) string {
		tu, cc, h, rev := base, c, "h", "rev"
		f(&tu, &cc, &h, &rev)
		return govern.RequestID(tu, cc, h, rev)
	}
	for name, f := range map[string]func(*govern.Turn, *warden.ToolCall, *string, *string){
		"chain":    func(tu *govern.Turn, _ *warden.ToolCall, _, _ *string) { tu.Run.ChainID = "run-9" },
		"workflow": func(tu *govern.Turn, _ *warden.ToolCall, _, _ *string) { tu.Run.WorkflowID = "wf-9" },
		"step":     func(tu *govern.Turn, _ *warden.ToolCall, _, _ *string) { tu.Step++ },
		"call":     func(_ *govern.Turn, cc *warden.ToolCall, _, _ *string) { cc.ID = "call-9" },
		"tool":     func(_ *govern.Turn, cc *warden.ToolCall, _, _ *string) { cc.Name = "shell" },
		"args":     func(_ *govern.Turn, _ *warden.ToolCall, h, _ *string) { *h = "h2" },
		"revision": func(_ *govern.Turn, _ *warden.ToolCall, _, rev *string) { *rev = "rev2" },
	} {
		require.NotEqual(t, id, other(f), "the request ID ignores the %s", name)
	}
	// Runs recorded before the canonical form keep their IDs (no chain).
	legacy := base
	legacy.ArgsForm = warden.ArgsFormLegacy
	require.Equal(t, warden.ApprovalRequestID("wf-1", 3, "call-1", "issue_refund", "h", "rev"), govern.RequestID(legacy, c, "h", "rev"))
	legacy.Run.ChainID = "run-9"
	require.Equal(t, warden.ApprovalRequestID("wf-1", 3, "call-1", "issue_refund", "h", "rev"), govern.RequestID(legacy, c, "h", "rev"))
	// Without a chain ID the run ID is the chain.
	noChain := base
	noChain.Run.ChainID = ""
	noChain.Run.RunID = "run-1"
	require.Equal(t, id, govern.RequestID(noChain, c, "h", "rev"))
}

func TestEnforceJudgesTheEvidence(t *testing.T) {
	t.Parallel()
	tu := turn()
	c := call("issue_refund", refund)
	z := govern.Authorize(t.Context(), bundle, registry, c, tu)
	require.Equal(t, govern.RequireApproval, z.Verdict)
	good := warden.ApprovalEvidence{RequestID: z.RequestID, ArgsHash: z.ArgsHash, Approvers: []string{"alice"}}
	tests := []struct {
		name   string
		edit   func(*warden.ApprovalEvidence)
		refuse string
	}{
		{"valid evidence", func(*warden.ApprovalEvidence) {}, ""},
		{"another request", func(e *warden.ApprovalEvidence) { e.RequestID = "apr_other" }, "does not match this call"},
		{"other arguments", func(e *warden.ApprovalEvidence) { e.ArgsHash = "sha256:0" }, "approval was given for arguments"},
		// The bundle judges the approvers itself (authz.rego) before Go does.
		{"an approver the policy does not list", func(e *warden.ApprovalEvidence) { e.Approvers = []string{"mallory"} }, "0 valid approvals of the 1 required"},
		{"the requester herself", func(e *warden.ApprovalEvidence) { e.Approvers = []string{"rita"} }, "0 valid approvals of the 1 required"},
		{"no approver", func(e *warden.ApprovalEvidence) { e.Approvers = nil }, "0 valid approvals of the 1 required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ev := good
			tt.edit(&ev)
			dec, err := govern.Enforce(t.Context(), bundle, registry, c, tu, &ev)
			if tt.refuse == "" {
				require.NoError(t, err)
				require.True(t, dec.Allow)
				return
			}
			require.ErrorIs(t, err, govern.ErrRefused)
			require.ErrorContains(t, err, tt.refuse)
			require.NotContains(t, err.Error(), "refused:", "the refusal's text is its cause's alone")
		})
	}
	_, err := govern.Enforce(t.Context(), bundle, registry, c, tu, nil)
	require.ErrorContains(t, err, "the policy requires approval and none was given")

	// A critical refund needs two distinct approvers: one twice is one.
	big := call("issue_refund", `{"order_id":"1","amount_cents":600000,"currency":"USD","reason":"fraud"}`)
	z = govern.Authorize(t.Context(), bundle, registry, big, tu)
	require.Equal(t, 2, z.Decision.Quorum)
	twice := warden.ApprovalEvidence{RequestID: z.RequestID, ArgsHash: z.ArgsHash, Approvers: []string{"alice", "alice"}}
	_, err = govern.Enforce(t.Context(), bundle, registry, big, tu, &twice)
	require.ErrorContains(t, err, "1 valid approvals of the 2 required")
}

// Go's own check of the evidence, for a policy that does not judge it.
func TestCheckEvidence(t *testing.T) {
	t.Parallel()
	tu := turn()
	c := call("issue_refund", refund)
	dec := warden.Decision{Allow: true, RequireApproval: true, Quorum: 2, PolicyRevision: "rev",
		Approvers: warden.Approvers{Users: []string{"alice", "bob", "rita"}}}
	id := govern.RequestID(tu, c, "h", "rev")
	check := func(ev *warden.ApprovalEvidence) error { return govern.CheckEvidence(dec, tu, c, "h", ev) }
	require.NoError(t, check(&warden.ApprovalEvidence{RequestID: id, ArgsHash: "h", Approvers: []string{"alice", "bob"}}))
	require.ErrorContains(t, check(nil), "the policy requires approval and none was given")
	require.ErrorContains(t, check(&warden.ApprovalEvidence{RequestID: "apr_x", ArgsHash: "h", Approvers: []string{"alice", "bob"}}), "does not match this call")
	require.ErrorContains(t, check(&warden.ApprovalEvidence{RequestID: id, ArgsHash: "h2", Approvers: []string{"alice", "bob"}}), "approval was given for arguments h2, not h")
	require.ErrorContains(t, check(&warden.ApprovalEvidence{RequestID: id, ArgsHash: "h", Approvers: []string{"alice", "mallory"}}), "mallory may not approve this call")
	require.ErrorContains(t, check(&warden.ApprovalEvidence{RequestID: id, ArgsHash: "h", Approvers: []string{"alice", "rita"}}), "rita may not approve this call")
	require.ErrorContains(t, check(&warden.ApprovalEvidence{RequestID: id, ArgsHash: "h", Approvers: []string{"alice", "alice"}}), "approval needs 2 distinct approvers, got 1")
	dec.Approvers.AllowSelfApproval = true
	require.NoError(t, check(&warden.ApprovalEvidence{RequestID: id, ArgsHash: "h", Approvers: []string{"alice", "rita"}}))
	dec.RequireApproval = false
	require.NoError(t, check(nil), "no approval needed: no evidence needed")
}

func TestEnforceRefusesWhatAuthorizeCouldNotHaveAllowed(t *testing.T) {
	t.Parallel()
	_, err := govern.Enforce(t.Context(), bundle, registry, call("launch", `{}`), turn(), nil)
	require.ErrorIs(t, err, govern.ErrUnknownTool)
	require.EqualError(t, err, "unknown tool launch")
	_, err = govern.Enforce(t.Context(), bundle, registry, call("read_file", `{"path":"a","x":1}`), turn(), nil)
	require.ErrorIs(t, err, govern.ErrInvalidArgs)
	require.ErrorContains(t, err, "invalid arguments for read_file: ")
}

func TestEventsRecordTheAuthorization(t *testing.T) {
	t.Parallel()
	tu := turn()
	now := time.Date(2026, 12, 3, 18, 0, 0, 0, time.UTC)
	req := govern.Request{Actor: "", Revision: "taint-1", RequestedAt: now, ApprovalTimeout: time.Hour}
	c := call("issue_refund", refund)
	z := govern.Authorize(t.Context(), bundle, registry, c, tu)
	evs := z.Events(tu, c, req, now)
	require.Len(t, evs, 3)
	types := []warden.EventType{warden.EventToolRequested, warden.EventPolicyDecided, warden.EventApprovalRequested}
	for i, ev := range evs {
		require.Equal(t, types[i], ev.Type)
		require.Equal(t, warden.EventID("wf-1", "run-2", 3, "call-1", types[i], "taint-1"), ev.ID)
		require.Equal(t, now, ev.OccurredAt)
	}
	require.Equal(t, "model", evs[0].Actor)
	require.Equal(t, string(govern.RequireApproval), evs[1].Decision)
	require.Equal(t, z.RequestID, evs[2].RequestID)
	// The run's hour caps the policy's own timeout (none here).
	require.Contains(t, evs[2].Message, "awaiting 1 approval(s) from alice, bob, carol until 2026-12-03T19:00:00Z")
	require.Equal(t, now.Add(10*time.Minute), govern.ExpiresAt(warden.Decision{Obligations: warden.Obligations{ApprovalTimeoutSeconds: 600}}, now, time.Hour))
	require.Equal(t, now.Add(time.Hour), govern.ExpiresAt(warden.Decision{Obligations: warden.Obligations{ApprovalTimeoutSeconds: 7200}}, now, time.Hour))
	require.Equal(t, now.Add(2*time.Hour), govern.ExpiresAt(warden.Decision{Obligations: warden.Obligations{ApprovalTimeoutSeconds: 7200}}, now, 0))

	bad := call("read_file", `{"path":`)
	z = govern.Authorize(t.Context(), bundle, registry, bad, tu)
	evs = z.Events(tu, bad, govern.Request{Actor: "dana"}, now)
	require.Len(t, evs, 1)
	require.Equal(t, "dana", evs[0].Actor)
	require.Equal(t, string(govern.InvalidArgs), evs[0].Decision)
	require.JSONEq(t, `"{\"path\":"`, string(evs[0].Args), "malformed arguments are kept as a string")
}

// randomPolicy is any policy that decides from its input alone: a random
// but fixed function of the input's bytes, approval evidence left out
// (as the default bundle's rules are).
type randomPolicy struct{ seed uint64 }

func (p randomPolicy) Decide(_ context.Context, in warden.PolicyInput) (warden.Decision, error) {
	in.Approval = nil
	b, _ := json.Marshal(in)
	h := p.seed
	for _, c := range b {
		h = h*1099511628211 ^ uint64(c)
	}
	r := rand.New(rand.NewPCG(h, h>>7))
	d := warden.Decision{Allow: r.IntN(4) != 0, RequireApproval: r.IntN(2) == 0, Risk: warden.RiskHigh, PolicyRevision: fmt.Sprintf("rev-%d", r.IntN(3))}
	d.Quorum = 1 + r.IntN(3)
	users := []string{"alice", "bob", "carol", "rita", "*"}
	for _, u := range users {
		if r.IntN(2) == 0 {
			d.Approvers.Users = append(d.Approvers.Users, u)
		}
	}
	d.Approvers.AllowSelfApproval = r.IntN(4) == 0
	d.Reasons = []string{fmt.Sprintf("reason %d", r.IntN(100))}
	return d, nil
}

// The property the issue asks for: for the same Turn, Authorize and
// Enforce agree. An allowed call is enforced without evidence; a denied
// or invalid one is refused; a call that needs approval is refused without
// evidence and runs with evidence for exactly what Authorize asked for,
// from enough distinct approvers the decision permits.
func TestAuthorizeAndEnforceAgree(t *testing.T) {
	t.Parallel()
	calls := []warden.ToolCall{
		call("read_file", `{"path":"notes.txt"}`), call("read_file", `{"path":1}`),
		call("write_file", `{"path":"a","content":"b"}`), call("shell", `{"argv":["ls","-la"]}`),
		call("shell", `{"argv":["curl","http://x"]}`), call("http_get", `{"url":"https://example.com/"}`),
		call("issue_refund", refund), call("issue_refund", `{"order_id":"9","amount_cents":900000,"currency":"EUR","reason":"r"}`),
		call("launch", `{}`), call("shell", `{"argv":`),
	}
	taints := [][]string{nil, {"tool:shell"}, {"tool:http_get", "tool:read_file"}}
	modes := []warden.SandboxMode{warden.SandboxIsolated, warden.SandboxProcess, ""}
	policies := []govern.Policy{bundle, randomPolicy{1}, randomPolicy{2}, randomPolicy{3}}
	rng := rand.New(rand.NewPCG(12, 2026))
	counts := map[govern.Verdict]int{}
	approved := 0
	for i := range 600 {
		tu := turn()
		tu.Step = rng.IntN(5)
		tu.Taint = taints[rng.IntN(len(taints))]
		tu.SandboxMode = modes[rng.IntN(len(modes))]
		tu.Run.Requester = []string{"rita", "alice", ""}[rng.IntN(3)]
		tu.ArgsForm = []int{warden.ArgsFormCanonical, warden.ArgsFormLegacy}[rng.IntN(2)]
		c := calls[rng.IntN(len(calls))]
		policy := policies[rng.IntN(len(policies))]
		ctx := context.Background()
		z := govern.Authorize(ctx, policy, registry, c, tu)
		counts[z.Verdict]++
		what := fmt.Sprintf("case %d: %s %s in %+v → %s", i, c.Name, c.Args, tu, z.Verdict)
		dec, err := govern.Enforce(ctx, policy, registry, c, tu, nil)
		switch z.Verdict {
		case govern.Allow:
			require.NoError(t, err, what)
			require.Equal(t, z.Decision, dec, what)
		case govern.Deny, govern.InvalidArgs:
			require.Error(t, err, what)
		case govern.RequireApproval:
			require.ErrorIs(t, err, govern.ErrRefused, what)
			var permitted []string
			for _, u := range []string{"alice", "bob", "carol", "rita", "dana", "erin"} {
				if govern.Permits(z.Decision.Approvers, u, tu.Run.Requester) {
					permitted = append(permitted, u)
				}
			}
			quorum := max(z.Decision.Quorum, 1)
			ev := &warden.ApprovalEvidence{RequestID: z.RequestID, ArgsHash: z.ArgsHash}
			if len(permitted) < quorum {
				continue // nobody can approve: nothing to enforce
			}
			ev.Approvers = permitted[:quorum]
			dec, err = govern.Enforce(ctx, policy, registry, c, tu, ev)
			if z.Decision.Allow {
				require.NoError(t, err, what)
				approved++
			} else {
				require.ErrorIs(t, err, govern.ErrRefused, what)
			}
			require.Equal(t, z.Decision.PolicyRevision, dec.PolicyRevision, what)
			// One approver short of the quorum never runs it.
			ev.Approvers = permitted[:quorum-1]
			_, err = govern.Enforce(ctx, policy, registry, c, tu, ev)
			require.Error(t, err, what)
		}
	}
	t.Logf("verdicts %v, approved and enforced %d", counts, approved)
	for _, v := range []govern.Verdict{govern.Allow, govern.Deny, govern.InvalidArgs, govern.RequireApproval} {
		require.Positive(t, counts[v], "no case reached %s", v)
	}
	require.Positive(t, approved)
	require.False(t, strings.Contains(fmt.Sprint(counts), "unknown"))
}
