package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/client"
	"github.com/wardenhq/warden/internal/testenv"
	"github.com/wardenhq/warden/tools"
	"github.com/wardenhq/warden/worker"
)

func TestMain(m *testing.M) {
	tools.Reexec()
	os.Exit(m.Run())
}

func TestHandlerStartsRunsIdempotentlyAndReportsResults(t *testing.T) {
	srv := testenv.DevServer(t)
	cfg := worker.Config{
		TemporalAddress: srv.Address,
		DataDir:         t.TempDir(),
		Logger:          slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	go func() { done <- worker.Run(ctx, cfg, func(*worker.Deps) { close(ready) }) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done) })
	select {
	case <-ready:
	case err := <-done:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("worker not ready")
	}
	api := httptest.NewServer(newHandler(client.New(srv.Client(), "")))
	defer api.Close()

	start := func(key, body string) *http.Response {
		req, err := http.NewRequest(http.MethodPost, api.URL+"/runs", strings.NewReader(body))
		require.NoError(t, err)
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { _ = resp.Body.Close() })
		return resp
	}
	body := `{"tenant":"acme","requester":"dana","goal":"What is the answer?","model":"scripted/answer"}`

	first := start("order-1234", body)
	require.Equal(t, http.StatusAccepted, first.StatusCode)
	var h1 client.RunHandle
	require.NoError(t, json.NewDecoder(first.Body).Decode(&h1))
	require.Equal(t, "run-acme-order-1234", h1.WorkflowID)
	require.Equal(t, "/runs/run-acme-order-1234", first.Header.Get("Location"))

	retry := start("order-1234", body)
	require.Equal(t, http.StatusAccepted, retry.StatusCode)
	var h2 client.RunHandle
	require.NoError(t, json.NewDecoder(retry.Body).Decode(&h2))
	require.Equal(t, h1.RunID, h2.RunID, "a retried request returns the same run")

	require.Equal(t, http.StatusBadRequest, start("", body).StatusCode, "no idempotency key")
	require.Equal(t, http.StatusBadRequest, start("a/b", body).StatusCode, "unsafe key")
	require.Equal(t, http.StatusBadRequest, start("k2", `{"tenant":"acme"}`).StatusCode, "invalid run request")

	var view runView
	require.Eventually(t, func() bool {
		resp, err := http.Get(api.URL + "/runs/" + h1.WorkflowID)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		view = runView{}
		return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&view) == nil && view.Result != nil
	}, time.Minute, 200*time.Millisecond)
	require.Equal(t, warden.StatusCompleted, view.Status)
	require.Contains(t, view.Result.Answer, "The answer is 42.")

	// The run has closed. A request retried now (same key, even another
	// goal) still returns that run and starts nothing: without the reject-
	// duplicate reuse policy Temporal would silently start a second run.
	late := start("order-1234", `{"tenant":"acme","requester":"dana","goal":"Something else?","model":"scripted/answer"}`)
	require.Equal(t, http.StatusAccepted, late.StatusCode)
	var h3 client.RunHandle
	require.NoError(t, json.NewDecoder(late.Body).Decode(&h3))
	require.Equal(t, h1, h3, "a request retried after the run closed returns the same run")
	desc, err := srv.Client().DescribeWorkflowExecution(context.Background(), h1.WorkflowID, "")
	require.NoError(t, err)
	require.Equal(t, h1.RunID, desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), "no new run was started under the ID")
	require.Equal(t, enumspb.WORKFLOW_EXECUTION_STATUS_COMPLETED, desc.GetWorkflowExecutionInfo().GetStatus())

	resp, err := http.Get(api.URL + "/runs/no-such-run")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
