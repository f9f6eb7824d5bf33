package activities

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// WorkspaceRecordSuffix names the record of a workspace: the file
// <workspace>.run.json beside the workspace folder (never inside it,
// where the tool could rewrite it).
const WorkspaceRecordSuffix = ".run.json"

// WorkspaceRecord says which run chain a workspace belongs to, so the
// worker's sweeper can ask Temporal whether the chain is closed and the
// workspace may go (the folder name is a hash).
type WorkspaceRecord struct {
	// Namespace is the Temporal namespace of the run; empty in records
	// written without one (any sweeper then counts the record as its own).
	Namespace  string `json:"namespace,omitempty"`
	Tenant     string `json:"tenant"`
	WorkflowID string `json:"workflow_id"`
	// ChainID is the first run ID of the chain (RunRef.ChainID, or the
	// run ID of a run recorded before chains were).
	ChainID string `json:"chain_id"`
}

// Run is the record as the RunRef WorkspaceDir takes.
func (w WorkspaceRecord) Run() RunRef {
	return RunRef{Tenant: w.Tenant, WorkflowID: w.WorkflowID, RunID: w.ChainID, ChainID: w.ChainID}
}

// ReadWorkspaceRecord reads the record at path (a file ending in
// WorkspaceRecordSuffix below root) and returns it with the workspace it
// describes. It fails when the record does not describe the folder beside
// it: a record is trusted only for the workspace its own content names.
func ReadWorkspaceRecord(root, path string) (WorkspaceRecord, string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return WorkspaceRecord{}, "", err
	}
	var rec WorkspaceRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return WorkspaceRecord{}, "", fmt.Errorf("workspace record %s: %w", path, err)
	}
	if rec.WorkflowID == "" || rec.ChainID == "" {
		return WorkspaceRecord{}, "", fmt.Errorf("workspace record %s names no workflow ID or chain", path)
	}
	dir := WorkspaceDir(root, rec.Run())
	if dir+WorkspaceRecordSuffix != filepath.Clean(path) {
		return WorkspaceRecord{}, "", fmt.Errorf("workspace record %s describes another workspace (%s)", path, dir)
	}
	return rec, dir, nil
}

// writeWorkspaceRecord writes the record of run's workspace dir once,
// before the folder exists (so no workspace is ever without one).
func writeWorkspaceRecord(dir, namespace string, run RunRef) error {
	path := dir + WorkspaceRecordSuffix
	if _, err := os.Lstat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return err
	}
	raw, err := json.Marshal(WorkspaceRecord{Namespace: namespace, Tenant: run.Tenant, WorkflowID: run.WorkflowID, ChainID: cmp.Or(run.ChainID, run.RunID)})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dir), "."+strings.TrimPrefix(filepath.Base(dir), ".")+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(raw); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
