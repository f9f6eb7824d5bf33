package govern

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/wardenhq/warden"
)

// Bar is what approving a pending call takes: its risk, how many distinct
// approvers, and who they may be (with signatures or not).
type Bar struct {
	Risk      warden.Risk
	Quorum    int
	Approvers warden.Approvers
}

// BarOf is the bar of a pending request.
func BarOf(r warden.ApprovalRequest) Bar {
	return Bar{Risk: r.Risk, Quorum: max(r.Quorum, 1), Approvers: r.Approvers}
}

// Stricter is the bar an edited call must clear: the stricter of the
// request it replaces and the policy's decision on the edited arguments,
// so an edit never lowers it (an approver cannot turn a critical refund
// needing two signed approvals into a high one they approve alone by
// editing the amount under the threshold). An edited call the policy
// allows outright keeps the original bar. The risk is the higher, the
// quorum the larger, signatures are needed if either needs them, self
// approval only if both allow it, and the approvers are those both permit
// ("*" permits whoever the other side lists). It fails when no approver is
// left, or too few besides the requester for the quorum: the edit could
// never be approved.
func Stricter(old Bar, edited warden.Decision, requester string) (Bar, error) {
	if !edited.RequireApproval {
		return old, nil
	}
	next := edited.Approvers
	bar := Bar{
		Risk:   old.Risk,
		Quorum: max(old.Quorum, edited.Quorum, 1),
		Approvers: warden.Approvers{
			Groups:            union(old.Approvers.Groups, next.Groups),
			AllowSelfApproval: old.Approvers.AllowSelfApproval && next.AllowSelfApproval,
			RequireSignature:  old.Approvers.RequireSignature || next.RequireSignature,
		},
	}
	if riskRank(edited.Risk) > riskRank(old.Risk) {
		bar.Risk = edited.Risk
	}
	bar.Approvers.Users = intersect(old.Approvers.Users, next.Users)
	if len(bar.Approvers.Users) == 0 {
		return Bar{}, fmt.Errorf("nobody may approve both the original call (%s) and the edited one (%s)",
			describe(old.Approvers), describe(next))
	}
	if eligible := eligibleUsers(bar.Approvers, requester); !slices.Contains(bar.Approvers.Users, "*") && len(eligible) < bar.Quorum {
		return Bar{}, fmt.Errorf("only %d approvers (%s) may approve both the original call and the edited one, and %d approvals are needed",
			len(eligible), cmpOr(strings.Join(eligible, ", "), "none"), bar.Quorum)
	}
	if bar.Approvers.RequireSignature {
		keys := map[string]string{}
		maps.Copy(keys, old.Approvers.Keys)
		maps.Copy(keys, next.Keys)
		bar.Approvers.Keys = keys
	}
	return bar, nil
}

// eligibleUsers are the listed users other than the requester (unless
// the requester may approve).
func eligibleUsers(a warden.Approvers, requester string) []string {
	var out []string
	for _, u := range a.Users {
		if a.AllowSelfApproval || !NamesAsIdentities.Same(u, requester) {
			out = append(out, u)
		}
	}
	return out
}

func cmpOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// riskRank orders risks; an unknown one ranks as critical.
func riskRank(r warden.Risk) int {
	switch r {
	case warden.RiskLow:
		return 0
	case warden.RiskMedium:
		return 1
	case warden.RiskHigh:
		return 2
	}
	return 3
}

// intersect is the users both lists permit, in a's order then b's: "*" on
// one side permits whoever the other lists.
func intersect(a, b []string) []string {
	switch {
	case slices.Contains(a, "*"):
		return slices.Clone(b)
	case slices.Contains(b, "*"):
		return slices.Clone(a)
	}
	var out []string
	for _, u := range a {
		if slices.ContainsFunc(b, func(v string) bool { return NamesAsIdentities.Same(u, v) }) {
			out = append(out, u)
		}
	}
	return out
}

func union(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// CountsForEdit reports whether the approver who edited the arguments
// approves the edited call too: when bar permits them and, if bar needs
// signatures, d's signature verifies with their key over the edited
// arguments (d was signed for the request it edited, whose ID was bound
// to the run).
func CountsForEdit(old warden.ApprovalRequest, bar Bar, d warden.ApprovalDecision) bool {
	form := NameForm(old.NameForm)
	listed, ok := form.Resolve(bar.Approvers, d.Approver, old.Requester)
	if !ok {
		return false
	}
	if !bar.Approvers.RequireSignature {
		return true
	}
	signed := old
	signed.Approvers = bar.Approvers
	return checkSignature(signed, d, listed) == nil
}
