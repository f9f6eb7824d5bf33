// Run workspaces: the folder of each run chain below the workspace root
// (WorkspaceDir, PrepareWorkspace) and the record beside it that lets the
// worker's sweeper remove it once the chain is closed.

package activities

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
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

var unsafePathChars = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// WorkspaceDir is the workspace folder of a run below root:
// root/<tenant>-<h1>/<workflow>-<h2>, where the readable parts are the
// names with unsafe characters replaced (for people looking at the disk)
// and h1, h2 are SHA-256 prefixes (96 bits) of the length-prefixed
// tenant, and of tenant, workflow ID and chain: distinct runs never share
// a folder (short of a hash collision), however their names fold.
func WorkspaceDir(root string, run RunRef) string {
	chain := cmp.Or(run.ChainID, run.RunID)
	readable := func(s string, n int) string {
		s = unsafePathChars.ReplaceAllString(s, "_")
		if len(s) > n {
			s = s[:n]
		}
		return strings.Trim(s, ".")
	}
	sum := func(parts ...string) string {
		h := sha256.New()
		for _, p := range parts {
			fmt.Fprintf(h, "%d:%s;", len(p), p)
		}
		return hex.EncodeToString(h.Sum(nil))[:24]
	}
	return filepath.Join(root,
		readable(run.Tenant, 32)+"-"+sum("tenant", run.Tenant),
		readable(run.WorkflowID, 48)+"-"+sum("run", run.Tenant, run.WorkflowID, chain))
}

// workspace returns (creating it) the run's workspace folder.
func (a *Activities) workspace(run RunRef) (string, error) {
	if a.WorkspaceRoot == "" {
		return "", errors.New("no workspace root configured")
	}
	return prepareWorkspace(a.WorkspaceRoot, a.Namespace, run)
}

// PrepareWorkspace returns the workspace folder of run below root,
// creating it and, beside it, its WorkspaceRecord (with no namespace: any
// sweeper of the folder counts it as its own).
func PrepareWorkspace(root string, run RunRef) (string, error) {
	return prepareWorkspace(root, "", run)
}

func prepareWorkspace(root, namespace string, run RunRef) (string, error) {
	dir := WorkspaceDir(root, run)
	// The record beside it lets the worker remove it once the run chain
	// is closed.
	if err := writeWorkspaceRecord(dir, namespace, run); err != nil {
		return "", fmt.Errorf("record workspace: %w", err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", fmt.Errorf("create workspace: %w", err)
	}
	return dir, nil
}
