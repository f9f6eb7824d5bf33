package bench

import (
	"context"
	"fmt"
	"time"

	"go.temporal.io/sdk/workflow"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/activities"
	"github.com/wardenhq/warden/llm"
)

// benchScenario calls one cheap tool every step.
var benchScenario = llm.Scenario{
	Name:       "bench",
	RepeatLast: true,
	Turns:      []llm.Turn{{ToolCalls: []llm.ScriptedCall{{Name: "shell", Args: []byte(`{"argv":["echo","step"]}`)}}}},
}

// BareInput is the bare loop's input.
type BareInput struct {
	Steps int `json:"steps"`
}

// BareLoop is the bare Temporal baseline: per step one model activity and
// one tool activity, no policy, no audit, no approvals.
func BareLoop(ctx workflow.Context, in BareInput) (int, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	msgs := []warden.Message{{Role: warden.RoleUser, Content: "benchmark"}}
	for i := 0; i < in.Steps; i++ {
		var resp warden.ModelResponse
		if err := workflow.ExecuteActivity(ctx, "BareModel", msgs).Get(ctx, &resp); err != nil {
			return i, err
		}
		msgs = append(msgs, warden.Message{Role: warden.RoleAssistant, ToolCalls: resp.ToolCalls})
		for _, call := range resp.ToolCalls {
			var out warden.ToolOutput
			if err := workflow.ExecuteActivity(ctx, "BareTool", call).Get(ctx, &out); err != nil {
				return i, err
			}
			msgs = append(msgs, warden.Message{Role: warden.RoleTool, ToolCallID: call.ID, Name: call.Name, Content: out.Content})
		}
	}
	return in.Steps, nil
}

// bareActivities reuse the worker's model client and sandboxed tools.
type bareActivities struct {
	deps      *activities.Activities
	workspace string
}

// BareModel calls the scripted model.
func (b *bareActivities) BareModel(ctx context.Context, msgs []warden.Message) (warden.ModelResponse, error) {
	return b.deps.Model.Complete(ctx, warden.ModelRequest{Model: llm.ScriptedModelPrefix + benchScenario.Name, Messages: msgs, Tools: b.deps.Tools.Specs(nil)})
}

// BareTool runs the call in the same sandbox as the governed path.
func (b *bareActivities) BareTool(ctx context.Context, call warden.ToolCall) (warden.ToolOutput, error) {
	out, err := b.deps.Tools.Run(ctx, activities.ToolRun{
		Tool: call.Name, Args: call.Args, Workspace: b.workspace,
		IdempotencyKey: fmt.Sprint(time.Now().UnixNano()),
		Obligations:    warden.Obligations{TimeoutSeconds: 30, MaxOutputBytes: 65536},
	})
	return out, err
}
