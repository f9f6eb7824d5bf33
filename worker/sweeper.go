package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"

	"github.com/wardenhq/warden/activities"
)

// The workspace sweeper. Every workspace has a record beside it
// (activities.WorkspaceRecord: tenant, workflow ID, chain) written before
// the folder; the sweeper asks Temporal whether that chain is closed and
// removes the workspace (unmounting its tmpfs) and the record when it is.
// A chain that is open, or continued as new, keeps its workspace; an
// error keeps it too, is logged, and the next sweep tries again.

// SweepReport is what one sweep did.
type SweepReport struct {
	// Removed lists the workspaces removed; Kept counts those of open
	// chains and of other namespaces.
	Removed []string
	Kept    int
	// Errors are the workspaces the sweep could not judge or remove.
	Errors []error
}

// SweepWorkspaces removes, once, the workspaces below root whose run
// chain Temporal reports closed. remove removes one workspace folder
// (sandbox.Runner.RemoveWorkspace: unmount, then remove without following
// links); it is never called with a path that a record does not name as
// its own folder below root. tc is a client of namespace; records of runs
// of another namespace are kept.
func SweepWorkspaces(ctx context.Context, tc client.Client, namespace, root string, remove func(dir string) error) SweepReport {
	var rep SweepReport
	tenants, err := os.ReadDir(root)
	if errors.Is(err, os.ErrNotExist) {
		return rep
	}
	if err != nil {
		rep.Errors = append(rep.Errors, fmt.Errorf("list workspaces: %w", err))
		return rep
	}
	for _, t := range tenants {
		// Lstat semantics: a link where a tenant folder was is not entered.
		if !t.IsDir() || t.Type()&os.ModeSymlink != 0 {
			continue
		}
		tenantDir := filepath.Join(root, t.Name())
		entries, err := os.ReadDir(tenantDir)
		if err != nil {
			rep.Errors = append(rep.Errors, fmt.Errorf("list workspaces: %w", err))
			continue
		}
		for _, e := range entries {
			if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), activities.WorkspaceRecordSuffix) {
				continue
			}
			if ctx.Err() != nil {
				return rep
			}
			record := filepath.Join(tenantDir, e.Name())
			rec, dir, err := activities.ReadWorkspaceRecord(root, record)
			if err != nil {
				rep.Errors = append(rep.Errors, err)
				continue
			}
			if rec.Namespace != "" && rec.Namespace != namespace {
				// Another namespace's run: this client would find no such
				// workflow and take it for closed.
				rep.Kept++
				continue
			}
			closed, err := ChainClosed(ctx, tc, rec.WorkflowID, rec.ChainID)
			if err != nil {
				rep.Errors = append(rep.Errors, fmt.Errorf("workspace %s of workflow %s (chain %s): ask Temporal: %w", dir, rec.WorkflowID, rec.ChainID, err))
				continue
			}
			if !closed {
				rep.Kept++
				continue
			}
			if err := remove(dir); err != nil {
				rep.Errors = append(rep.Errors, fmt.Errorf("remove workspace %s of closed workflow %s (chain %s): %w", dir, rec.WorkflowID, rec.ChainID, err))
				continue
			}
			if err := os.Remove(record); err != nil && !errors.Is(err, os.ErrNotExist) {
				rep.Errors = append(rep.Errors, fmt.Errorf("remove workspace record %s: %w", record, err))
			}
			rep.Removed = append(rep.Removed, dir)
		}
		// The tenant's folder goes with its last workspace (fails while
		// one is left).
		_ = os.Remove(tenantDir)
	}
	return rep
}

// ChainClosed reports whether the run chain of workflowID that began with
// run chainID is closed: completed, failed, terminated, timed out or
// cancelled. A chain continued as new lives on in its latest run. The
// latest run of the workflow ID belongs to the chain when its first run
// ID is chainID; when it names another chain, the ID was reused, which
// Temporal allows only once the earlier chain closed; when nothing of the
// workflow ID is left (retention), the chain is closed.
func ChainClosed(ctx context.Context, tc client.Client, workflowID, chainID string) (bool, error) {
	resp, err := tc.DescribeWorkflowExecution(ctx, workflowID, "")
	if isNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	info := resp.GetWorkflowExecutionInfo()
	if info.GetFirstRunId() == chainID || info.GetExecution().GetRunId() == chainID {
		return closedStatus(info.GetStatus()), nil
	}
	if info.GetFirstRunId() != "" {
		return true, nil
	}
	// A server that does not report first run IDs: judge the chain's first run.
	resp, err = tc.DescribeWorkflowExecution(ctx, workflowID, chainID)
	if isNotFound(err) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return closedStatus(resp.GetWorkflowExecutionInfo().GetStatus()), nil
}

// closedStatus is true for the statuses that end a chain; running,
// continued-as-new and any status this code does not know keep it.
func closedStatus(s enumspb.WorkflowExecutionStatus) bool {
	switch s {
	case enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, enumspb.WORKFLOW_EXECUTION_STATUS_FAILED,
		enumspb.WORKFLOW_EXECUTION_STATUS_CANCELED, enumspb.WORKFLOW_EXECUTION_STATUS_TERMINATED,
		enumspb.WORKFLOW_EXECUTION_STATUS_TIMED_OUT:
		return true
	}
	return false
}

func isNotFound(err error) bool {
	var nf *serviceerror.NotFound
	return errors.As(err, &nf)
}

// SweepEvery sweeps deps' workspaces at start and then every interval
// until the returned function is called (which waits for a sweep in
// progress). Removals are logged at info, errors at warn; none is fatal.
func SweepEvery(tc client.Client, deps *Deps, interval time.Duration, log *slog.Logger) (stop func()) {
	return every(interval, func(ctx context.Context) {
		rep := SweepWorkspaces(ctx, tc, deps.Activities.Namespace, deps.WorkspaceRoot, deps.Sandbox.RemoveWorkspace)
		for _, dir := range rep.Removed {
			log.Info("workspace of a closed run removed", "workspace", dir)
		}
		for _, err := range rep.Errors {
			log.Warn("workspace sweep", "error", err)
		}
	})
}

// every runs pass at once and then every interval, each pass bounded by
// interval, until the returned function is called (which cancels a pass
// in progress and waits for it to return).
func every(interval time.Duration, pass func(ctx context.Context)) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			passCtx, done := context.WithTimeout(ctx, interval)
			pass(passCtx)
			done()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}
