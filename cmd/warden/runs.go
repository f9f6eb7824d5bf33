package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.temporal.io/sdk/client"

	"github.com/wardenhq/warden"
	wclient "github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/worker"
)

func dialClient(cmd *cobra.Command, cfg worker.Config) (*wclient.Client, client.Client, error) {
	cfg.Logger = quietLogger()
	tc, err := worker.Dial(cmd.Context(), cfg)
	if err != nil {
		return nil, nil, err
	}
	return wclient.New(tc, cfg.TaskQueue), tc, nil
}

// withClient binds the connection flags and sets cmd's RunE to check the
// output format, dial Temporal, and call fn with a warden Client.
func withClient(cmd *cobra.Command, cfg *worker.Config, out *output, fn func(cmd *cobra.Command, c *wclient.Client, args []string) error) {
	connFlags(cmd.Flags(), cfg)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if err := out.validate(); err != nil {
			return err
		}
		c, tc, err := dialClient(cmd, *cfg)
		if err != nil {
			return err
		}
		defer tc.Close()
		return fn(cmd, c, args)
	}
}

func newRunCmd() *cobra.Command {
	var (
		cfg     worker.Config
		req     warden.RunRequest
		id      string
		wait    bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "run --tenant T --requester R --goal \"...\"",
		Short: "Start a governed agent run and print its workflow ID",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req.ApprovalTimeout = timeout
			c, tc, err := dialClient(cmd, cfg)
			if err != nil {
				return err
			}
			defer tc.Close()
			h, err := c.Start(cmd.Context(), req, wclient.StartOptions{ID: id})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), h.WorkflowID)
			if !wait {
				fmt.Fprintf(cmd.ErrOrStderr(), "started; follow it with: warden status %s\n", h.WorkflowID)
				return nil
			}
			res, err := c.Result(cmd.Context(), h.WorkflowID)
			if err != nil {
				return err
			}
			return printResult(cmd, res)
		},
	}
	fs := cmd.Flags()
	connFlags(fs, &cfg)
	fs.StringVar(&req.Tenant, "tenant", "", "tenant the run belongs to (required)")
	fs.StringVar(&req.Requester, "requester", "", "who asks for the run; may not approve its calls (required)")
	fs.StringVar(&req.Goal, "goal", "", "what the agent should do (required)")
	fs.StringVar(&req.Model, "model", "", "model name; default the worker's (scripted/<scenario> for the scripted model)")
	fs.StringSliceVar(&req.AllowedTools, "tool", nil, "tool the model may use (repeatable; default all)")
	fs.IntVar(&req.Budget.MaxSteps, "max-steps", 0, "maximum model calls (default 20)")
	fs.IntVar(&req.Budget.MaxTokens, "max-tokens", 0, "maximum tokens over all model calls (default 200000)")
	fs.DurationVar(&timeout, "approval-timeout", 0, "how long a call waits for approval before it is rejected (default 24h)")
	fs.StringVar(&id, "id", "", "workflow ID; starting again with it returns the run under it, open or closed, and starts nothing (until retention removes a closed run)")
	fs.BoolVar(&wait, "wait", false, "wait for the run to finish and print its result")
	return cmd
}

func printResult(cmd *cobra.Command, res warden.RunResult) error {
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "status: %s\nsteps: %d\ntokens: %d in, %d out\n", res.Status, res.Steps, res.Usage.InputTokens, res.Usage.OutputTokens)
	if len(res.ToolCalls) > 0 {
		fmt.Fprintf(w, "tool calls: %s\n", countsString(res.ToolCalls))
	}
	if res.Error != "" {
		fmt.Fprintf(w, "error: %s\n", res.Error)
	}
	if res.Answer != "" {
		fmt.Fprintf(w, "answer:\n%s\n", res.Answer)
	}
	return nil
}

func countsString(m map[string]int) string {
	var parts []string
	for _, o := range warden.Outcomes {
		if k := string(o); m[k] > 0 {
			parts = append(parts, k+"="+strconv.Itoa(m[k]))
		}
	}
	return strings.Join(parts, " ")
}

func newStatusCmd() *cobra.Command {
	var cfg worker.Config
	cmd := &cobra.Command{
		Use:   "status <workflow-id>",
		Short: "Show where a run stands",
		Args:  cobra.ExactArgs(1),
	}
	out := outputFlag(cmd.Flags())
	withClient(cmd, &cfg, out, func(cmd *cobra.Command, c *wclient.Client, args []string) error {
		s, err := c.Status(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		return out.print(cmd.OutOrStdout(), s, nil,
			[]string{"STATUS", "STEP", "TOKENS", "PENDING", "TOOL CALLS", "DETAIL"},
			func(int) []string {
				return []string{string(s.Status), fmt.Sprintf("%d/%d", s.Step, s.Budget.MaxSteps),
					fmt.Sprintf("%d/%d", s.Usage.Total(), s.Budget.MaxTokens), strconv.Itoa(s.PendingApprovals),
					countsString(s.ToolCalls), clip(s.Error+s.Answer, 60)}
			})
	})
	return cmd
}

func newPendingCmd() *cobra.Command {
	var (
		cfg          worker.Config
		queryTimeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "pending <workflow-id>",
		Short: "List a run's tool calls waiting for approval (live query, or the run's memo when no worker answers)",
		Args:  cobra.ExactArgs(1),
	}
	out := outputFlag(cmd.Flags())
	withClient(cmd, &cfg, out, func(cmd *cobra.Command, c *wclient.Client, args []string) error {
		res, err := c.Pending(cmd.Context(), args[0], wclient.PendingOptions{QueryTimeout: queryTimeout})
		if err != nil {
			return err
		}
		reportSource(cmd, res)
		ps := res.Requests
		return out.print(cmd.OutOrStdout(), ps, toAny(ps),
			[]string{"REQUEST", "TOOL", "RISK", "APPROVERS", "EXPIRES", "ARGS"},
			func(i int) []string {
				p := ps[i]
				args := clip(string(p.Args), 60)
				if res.Source == wclient.PendingSourceMemo {
					args = "(not in the memo) sha256 " + clip(p.ArgsHash, 12)
				}
				return []string{p.RequestID, p.Tool, string(p.Risk), strings.Join(p.Approvers.Users, ","),
					p.ExpiresAt.Format(time.RFC3339), args}
			})
	})
	cmd.Flags().DurationVar(&queryTimeout, "query-timeout", wclient.DefaultQueryTimeout, "how long to wait for a worker to answer the query before reading the run's memo")
	return cmd
}

// reportSource says on stderr where a pending list came from.
func reportSource(cmd *cobra.Command, res wclient.PendingResult) {
	if res.Source == wclient.PendingSourceMemo {
		fmt.Fprintf(cmd.ErrOrStderr(), "source: memo (the run's last recorded state; arguments and reasons are not in it); the live query failed: %v\n", res.QueryErr)
		return
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "source: live query")
}

func newDecideCmd(verb string) *cobra.Command {
	var (
		cfg           worker.Config
		as            string
		reason        string
		keyFile       string
		args          string
		queryTimeout  time.Duration
		updateTimeout time.Duration
	)
	decision := warden.ApprovalApprove
	if verb == "reject" {
		decision = warden.ApprovalReject
	}
	cmd := &cobra.Command{
		Use: verb + " <workflow-id> [request-id] --as NAME",
		Short: strings.ToUpper(verb[:1]) + verb[1:] + " a pending tool call (through the approve Update, or the approve Signal " +
			"when no worker takes the Update in time); without a request ID, the run's only pending request",
		Args: cobra.RangeArgs(1, 2),
	}
	out := outputFlag(cmd.Flags())
	cmd.PreRunE = func(*cobra.Command, []string) error {
		if strings.TrimSpace(as) == "" {
			return fmt.Errorf("--as is required: name the approver (the policy decides who may approve)")
		}
		if args != "" && !json.Valid([]byte(args)) {
			return fmt.Errorf("--args must be a JSON object, got %q", args)
		}
		return nil
	}
	withClient(cmd, &cfg, out, func(cmd *cobra.Command, c *wclient.Client, argv []string) error {
		id := argv[0]
		d := warden.ApprovalDecision{Decision: decision, Approver: as, Reason: reason}
		if len(argv) == 2 {
			d.RequestID = argv[1]
		}
		if args != "" {
			d.Args = json.RawMessage(args)
		}
		if d.RequestID == "" || keyFile != "" {
			res, err := c.Pending(cmd.Context(), id, wclient.PendingOptions{QueryTimeout: queryTimeout})
			if err != nil {
				return err
			}
			reportSource(cmd, res)
			req, err := pickRequest(id, d.RequestID, res.Requests)
			if err != nil {
				return err
			}
			d.RequestID = req.RequestID
			if keyFile != "" {
				key, err := readSigningKey(keyFile)
				if err != nil {
					return err
				}
				if d, err = warden.SignApproval(key, req, d); err != nil {
					return err
				}
			}
		}
		res, err := c.DecideOrSignal(cmd.Context(), id, d, wclient.DecideOptions{UpdateTimeout: updateTimeout, QueryTimeout: queryTimeout})
		if err != nil {
			return err
		}
		switch {
		case res.Via == wclient.DecidedViaSignal:
			fmt.Fprintf(cmd.ErrOrStderr(), "via: signal (checked against the run's %s); the Update was not delivered: %v; "+
				"the run applies the decision when a worker takes it (see warden status and warden audit)\n", res.Source, res.UpdateErr)
		case res.Receipt.Status == warden.ApprovalStatusUnconfirmed:
			fmt.Fprintf(cmd.ErrOrStderr(), "via: update, unconfirmed: %v; the request is no longer pending (per the run's %s), "+
				"so the Update was most likely applied late; check with warden status and warden audit\n", res.UpdateErr, res.Source)
		case res.UpdateErr != nil:
			fmt.Fprintf(cmd.ErrOrStderr(), "via: update (its reply was lost: %v; the run's %s shows the decision applied)\n", res.UpdateErr, res.Source)
		default:
			fmt.Fprintln(cmd.ErrOrStderr(), "via: update")
		}
		receipt := res.Receipt
		return out.print(cmd.OutOrStdout(), receipt, nil, []string{"REQUEST", "STATUS", "APPROVALS"},
			func(int) []string {
				return []string{receipt.RequestID, receipt.Status, fmt.Sprintf("%d/%d", receipt.Approvals, receipt.Quorum)}
			})
	})
	fs := cmd.Flags()
	fs.StringVar(&as, "as", "", "approver name (required)")
	fs.StringVar(&reason, "reason", "", "why")
	fs.StringVar(&keyFile, "key", "", "Ed25519 private key to sign the decision with (needed when the policy demands signed approvals)")
	fs.DurationVar(&queryTimeout, "query-timeout", wclient.DefaultQueryTimeout, "how long to wait for a worker to answer the pending query before reading the run's memo")
	fs.DurationVar(&updateTimeout, "update-timeout", wclient.DefaultUpdateTimeout, "how long to wait for a worker to complete the approve Update before sending the approve Signal")
	if verb == "approve" {
		fs.StringVar(&args, "args", "", "approve these edited arguments (JSON object) instead of the model's; the policy decides on them again")
	}
	return cmd
}

// pickRequest finds requestID among pending, or the only pending request
// when requestID is empty.
func pickRequest(workflowID, requestID string, pending []warden.ApprovalRequest) (warden.ApprovalRequest, error) {
	if requestID != "" {
		i := slices.IndexFunc(pending, func(p warden.ApprovalRequest) bool { return p.RequestID == requestID })
		if i < 0 {
			return warden.ApprovalRequest{}, fmt.Errorf("%s has no pending request %s (pending: %s)", workflowID, requestID, requestIDs(pending))
		}
		return pending[i], nil
	}
	if len(pending) != 1 {
		return warden.ApprovalRequest{}, fmt.Errorf("%s has %d pending requests (%s): name the one to decide as the second argument", workflowID, len(pending), requestIDs(pending))
	}
	return pending[0], nil
}

func requestIDs(ps []warden.ApprovalRequest) string {
	if len(ps) == 0 {
		return "none"
	}
	ids := make([]string, len(ps))
	for i, p := range ps {
		ids[i] = p.RequestID + " (" + p.Tool + ")"
	}
	return strings.Join(ids, ", ")
}

func newApprovalsCmd() *cobra.Command {
	var (
		cfg worker.Config
		f   warden.InboxFilter
		ui  string
	)
	cmd := &cobra.Command{
		Use:   "approvals [--tenant T] [--risk R]",
		Short: "List runs waiting for approval (the approver inbox)",
		Args:  cobra.NoArgs,
	}
	out := outputFlag(cmd.Flags())
	withClient(cmd, &cfg, out, func(cmd *cobra.Command, c *wclient.Client, _ []string) error {
		entries, err := c.Inbox(cmd.Context(), f)
		if err != nil {
			return err
		}
		if err := out.print(cmd.OutOrStdout(), entries, toAny(entries),
			[]string{"WORKFLOW", "TENANT", "REQUESTER", "RISK", "PENDING TOOL", "STARTED"},
			func(i int) []string {
				e := entries[i]
				return []string{e.WorkflowID, e.Tenant, e.Requester, string(e.Risk), e.PendingTool, e.StartedAt.Local().Format(time.DateTime)}
			}); err != nil {
			return err
		}
		if out.format == "table" {
			fmt.Fprintf(cmd.ErrOrStderr(), "\nIn the Web UI: %s\n", warden.InboxURL(ui, cfg.Namespace, f))
		}
		return nil
	})
	fs := cmd.Flags()
	fs.StringVar(&f.Tenant, "tenant", "", "only this tenant")
	fs.StringVar((*string)(&f.Risk), "risk", "", "only this risk (low, medium, high, critical)")
	fs.StringVar(&ui, "ui", env("UI_ADDRESS", "http://127.0.0.1:8233"), "Web UI base URL for the printed inbox link (WARDEN_UI_ADDRESS)")
	return cmd
}
