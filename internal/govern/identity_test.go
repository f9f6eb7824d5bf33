package govern_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/internal/govern"
)

// lookalikes of "dana" an attacker types to pass for someone else (or to
// be counted twice); each is either refused or the same identity.
var lookalikes = map[string]string{
	"upper case":         "Dana",
	"all caps":           "DANA",
	"spaces around":      "  dana\t",
	"zero-width space":   "dana\u200b",
	"zero-width joiner":  "da\u200dna",
	"soft hyphen":        "da\u00adna",
	"BOM":                "\ufeffdana",
	"bidi override":      "\u202edana",
	"bidi isolate":       "dana\u2066",
	"word joiner":        "da\u2060na",
	"Cyrillic a":         "d\u0430na",
	"Greek alpha":        "d\u03b1na",
	"fullwidth":          "\uff44\uff41\uff4e\uff41",
	"mathematical bold":  "\U0001d41d\U0001d41a\U0001d427\U0001d41a",
	"variation selector": "dana\ufe0f",
	"Hangul filler":      "dana\u3164",
	"control character":  "dana\u0007",
	"line separator":     "dana\u2028",
	"combining grapheme": "dan\u034fa",
	"Latin alpha":        "d\u0251na", // a different letter: not dana, not refused
}

// TestLookAlikeNamesAreOneIdentityOrRefused is attack class 5 ("names
// compared as identities"): under NamesAsIdentities every look-alike of
// the requester's name is refused as self-approval or as a malformed name,
// with "*" approvers and with listed ones.
func TestLookAlikeNamesAreOneIdentityOrRefused(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for _, users := range [][]string{{"*"}, {"dana", "erin"}} {
		req := warden.ApprovalRequest{
			RequestID: "apr_1", Requester: "dana", ExpiresAt: now.Add(time.Hour),
			Approvers: warden.Approvers{Users: users}, NameForm: int(govern.NamesAsIdentities),
		}
		for name, typed := range lookalikes {
			if name == "Latin alpha" {
				continue
			}
			err := govern.CheckDecision(req, warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: typed}, now)
			require.ErrorIs(t, err, warden.ErrApprovalInvalid, "%s (%q) under %v", name, typed, users)
		}
		// Under the old form the same names passed as others (the hole).
		legacy := req
		legacy.NameForm = int(govern.NamesAsTyped)
		if users[0] == "*" {
			require.NoError(t, govern.CheckDecision(legacy, warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "Dana"}, now))
		}
	}
}

func TestParseName(t *testing.T) {
	t.Parallel()
	dana, err := govern.ParseName("dana")
	require.NoError(t, err)
	same := []string{"Dana", "DANA", " dana ", "\uff44\uff41\uff4e\uff41", "\U0001d41d\U0001d41a\U0001d427\U0001d41a"}
	for _, s := range same {
		n, err := govern.ParseName(s)
		require.NoError(t, err, s)
		require.Equal(t, dana.Key, n.Key, s)
	}
	for _, s := range []string{"", "  ", "dana\u200b", "\u202edana", "dana\u0007", "d\u0430na", "d\u03b1na", "dana\ufe0f"} {
		_, err := govern.ParseName(s)
		require.Error(t, err, "%q", s)
	}
	_, err = govern.ParseName("d\u0430na")
	require.ErrorContains(t, err, "U+0430")
	require.ErrorContains(t, err, "Cyrillic")
	_, err = govern.ParseName("dana\u200b")
	require.ErrorContains(t, err, "U+200B")
	// A name wholly in another script is a name; its look-alike letters
	// compare equal to the Latin ones they render as.
	cyr, err := govern.ParseName("\u0430\u0441\u0435") // "асе"
	require.NoError(t, err)
	ace, err := govern.ParseName("ace")
	require.NoError(t, err)
	require.Equal(t, ace.Key, cyr.Key)
	alpha, err := govern.ParseName("d\u0251na") // Latin small alpha is its own letter
	require.NoError(t, err)
	require.NotEqual(t, dana.Key, alpha.Key)
	// Legitimate non-ASCII names stay themselves.
	for _, s := range []string{"José", "Zoë", "Łukasz", "Σωκράτης", "李雷", "O'Brien", "ana-maria"} {
		_, err := govern.ParseName(s)
		require.NoError(t, err, s)
	}
}

// TestCaseVariantsDoNotMakeAQuorum: two spellings of one approver are one
// approval, in the workflow's check and in Enforce's evidence check.
func TestCaseVariantsDoNotMakeAQuorum(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	req := warden.ApprovalRequest{
		RequestID: "apr_1", Requester: "dana", ExpiresAt: now.Add(time.Hour), Quorum: 2,
		Approvers: warden.Approvers{Users: []string{"*"}}, NameForm: int(govern.NamesAsIdentities),
		Approvals: []warden.ApprovalDecision{{RequestID: "apr_1", Decision: "approve", Approver: "erin"}},
	}
	for _, again := range []string{"Erin", "ERIN", "\uff45rin", "erin "} {
		err := govern.CheckDecision(req, warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: again}, now)
		require.ErrorContains(t, err, "already decided", again)
	}
	dec := warden.Decision{Allow: true, RequireApproval: true, Quorum: 2, Approvers: warden.Approvers{Users: []string{"*"}}}
	turn := govern.Turn{Run: govern.Run{WorkflowID: "wf", RunID: "run", Requester: "dana"}}
	call := warden.ToolCall{ID: "c1", Name: "issue_refund", Args: json.RawMessage(`{}`)}
	id := govern.RequestID(turn, call, "h", "")
	err := govern.CheckEvidence(dec, turn, call, "h", &warden.ApprovalEvidence{RequestID: id, ArgsHash: "h", Approvers: []string{"erin", "Erin"}})
	require.ErrorContains(t, err, "2 distinct approvers, got 1")
	err = govern.CheckEvidence(dec, turn, call, "h", &warden.ApprovalEvidence{RequestID: id, ArgsHash: "h", Approvers: []string{"erin", "DANA"}})
	require.ErrorContains(t, err, "DANA may not approve")
	require.NoError(t, govern.CheckEvidence(dec, turn, call, "h", &warden.ApprovalEvidence{RequestID: id, ArgsHash: "h", Approvers: []string{"erin", "frank"}}))
}

// TestEditsCannotLowerTheBar is attack class 6: an edit needs the
// stricter of the two decisions, never fewer or weaker approvals.
func TestEditsCannotLowerTheBar(t *testing.T) {
	t.Parallel()
	critical := govern.Bar{Risk: warden.RiskCritical, Quorum: 2, Approvers: warden.Approvers{
		Users: []string{"alice", "bob", "carol"}, Groups: []string{"refund-approvers"}, RequireSignature: true,
		Keys: map[string]string{"alice": "ka", "bob": "kb", "carol": "kc"},
	}}
	high := warden.Decision{Allow: true, RequireApproval: true, Risk: warden.RiskHigh, Quorum: 1,
		Approvers: warden.Approvers{Users: []string{"alice", "bob", "carol", "dave"}, Groups: []string{"refund-approvers"}}}
	bar, err := govern.Stricter(critical, high, "dana")
	require.NoError(t, err)
	require.Equal(t, warden.RiskCritical, bar.Risk, "risk is the higher")
	require.Equal(t, 2, bar.Quorum, "quorum is the larger")
	require.True(t, bar.Approvers.RequireSignature, "signatures stay required")
	require.Equal(t, []string{"alice", "bob", "carol"}, bar.Approvers.Users, "approvers both permit")

	allowed := warden.Decision{Allow: true, Risk: warden.RiskLow}
	bar, err = govern.Stricter(critical, allowed, "dana")
	require.NoError(t, err)
	require.Equal(t, critical, bar, "an edit the policy allows outright keeps the original bar")

	raised := warden.Decision{Allow: true, RequireApproval: true, Risk: warden.RiskCritical, Quorum: 3,
		Approvers: warden.Approvers{Users: []string{"*"}, RequireSignature: true, Keys: map[string]string{"alice": "ka2"}}}
	high1 := govern.Bar{Risk: warden.RiskHigh, Quorum: 1, Approvers: warden.Approvers{Users: []string{"alice", "bob", "carol", "erin"}, AllowSelfApproval: true}}
	bar, err = govern.Stricter(high1, raised, "dana")
	require.NoError(t, err)
	require.Equal(t, warden.RiskCritical, bar.Risk)
	require.Equal(t, 3, bar.Quorum)
	require.True(t, bar.Approvers.RequireSignature)
	require.False(t, bar.Approvers.AllowSelfApproval, "self approval only if both allow it")
	require.Equal(t, []string{"alice", "bob", "carol", "erin"}, bar.Approvers.Users, "* permits whoever the other side lists")
	require.Equal(t, "ka2", bar.Approvers.Keys["alice"])

	_, err = govern.Stricter(critical, warden.Decision{Allow: true, RequireApproval: true, Quorum: 1,
		Approvers: warden.Approvers{Users: []string{"mallory"}}}, "dana")
	require.ErrorContains(t, err, "nobody may approve both")
	_, err = govern.Stricter(critical, warden.Decision{Allow: true, RequireApproval: true, Quorum: 1,
		Approvers: warden.Approvers{Users: []string{"alice", "dana"}}}, "dana")
	require.ErrorContains(t, err, "only 1 approvers (alice)", "the requester does not count toward the quorum")
}

// TestCountsForEditNeedsTheStricterSignature: the editor's own approval
// counts for the edited call only when the stricter bar permits them and
// their signature covers the edited arguments.
func TestCountsForEditNeedsTheStricterSignature(t *testing.T) {
	t.Parallel()
	pub, priv, err := ed25519.GenerateKey(nil)
	require.NoError(t, err)
	old := warden.ApprovalRequest{RequestID: "apr_1", Requester: "dana", ArgsHash: "h0", ArgsForm: warden.ArgsFormCanonical,
		NameForm: int(govern.NamesAsIdentities)}
	edited := json.RawMessage(`{"amount_cents":499999}`)
	hash, err := warden.ArgsHashForm(edited, warden.ArgsFormCanonical)
	require.NoError(t, err)
	bar := govern.Bar{Risk: warden.RiskCritical, Quorum: 2, Approvers: warden.Approvers{
		Users: []string{"alice", "bob"}, RequireSignature: true, Keys: map[string]string{"alice": base64.StdEncoding.EncodeToString(pub)}}}
	d := warden.ApprovalDecision{RequestID: "apr_1", Decision: "approve", Approver: "Alice", Args: edited}
	require.False(t, govern.CountsForEdit(old, bar, d), "unsigned")
	d.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, warden.ApprovalSigningMessage("apr_1", "h0", "approve")))
	require.False(t, govern.CountsForEdit(old, bar, d), "signed over the model's args, not the edited ones")
	d.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, warden.ApprovalSigningMessage("apr_1", hash, "approve")))
	require.True(t, govern.CountsForEdit(old, bar, d))
	d.Approver = "bob"
	require.False(t, govern.CountsForEdit(old, bar, d), "bob has no key")
	d.Approver = "mallory"
	bar.Approvers.RequireSignature = false
	require.False(t, govern.CountsForEdit(old, bar, d), "not permitted by the stricter bar")
}
