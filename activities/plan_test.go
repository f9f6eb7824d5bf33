package activities_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
)

// plan runs Plan in Temporal's activity test environment.
func (f *fixture) plan(t *testing.T, in activities.PlanInput) activities.PlanOutput {
	t.Helper()
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.acts)
	v, err := env.ExecuteActivity(f.acts.Plan, in)
	require.NoError(t, err)
	var out activities.PlanOutput
	require.NoError(t, v.Get(&out))
	return out
}

// TestPlanStoresOnlyLongTails: a short new tail of the conversation stays
// inline (no write, no reference: the workflow sends it again next step);
// a long one is stored and referenced, and the next Plan rebuilds the
// whole conversation from the reference plus its own tail.
func TestPlanStoresOnlyLongTails(t *testing.T) {
	f := newFixture(t)
	short := []warden.Message{{Role: warden.RoleUser, Content: "list the files"}}
	out := f.plan(t, activities.PlanInput{Run: run, Step: 1, Model: "scripted/echo", Messages: short, RemainingMicroUSD: -1})
	require.Empty(t, out.ConversationRef, "a short tail is not stored")

	long := append(short, warden.Message{Role: warden.RoleUser, Content: strings.Repeat("a long message. ", 200)})
	out = f.plan(t, activities.PlanInput{Run: run, Step: 2, Model: "scripted/echo", Messages: long, RemainingMicroUSD: -1})
	require.NotEmpty(t, out.ConversationRef, "a long tail is stored by reference")
	stored, err := f.deps.Audit.Payload(t.Context(), out.ConversationRef)
	require.NoError(t, err)
	require.Contains(t, string(stored), "a long message.")

	next := []warden.Message{{Role: warden.RoleUser, Content: "and now?"}}
	out2 := f.plan(t, activities.PlanInput{Run: run, Step: 3, Model: "scripted/echo", Messages: next, ConversationRef: out.ConversationRef, RemainingMicroUSD: -1})
	require.Empty(t, out2.ConversationRef, "the short tail after a reference stays inline")
}

// TestRecordInvalidEventIsNotRetried: an event no store accepts fails
// Record with a non-retryable error, so the workflow's patient retries of
// its own audit writes do not spin on it.
func TestRecordInvalidEventIsNotRetried(t *testing.T) {
	f := newFixture(t)
	var suite testsuite.WorkflowTestSuite
	env := suite.NewTestActivityEnvironment()
	env.RegisterActivity(f.acts)
	_, err := env.ExecuteActivity(f.acts.Record, activities.RecordInput{Events: []warden.AuditEvent{{ID: "e1", Type: warden.EventRunFinished}}})
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.True(t, appErr.NonRetryable())
	require.Equal(t, warden.ErrTypeInvalidAudit, appErr.Type())
	require.Contains(t, appErr.Error(), "tenant")
}
