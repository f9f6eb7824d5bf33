package worker

import (
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

func TestConfigDefaultsFillTheZeroFields(t *testing.T) {
	t.Parallel()
	c := Config{DataDir: "d"}.WithDefaults()
	require.Equal(t, DefaultTemporalAddress, c.TemporalAddress)
	require.Equal(t, "auto", c.TemporalCompression)
	require.Equal(t, "default", c.Namespace)
	require.Equal(t, warden.DefaultTaskQueue, c.TaskQueue)
	require.Equal(t, filepath.Join("d", "refunds.jsonl"), c.LedgerPath, "the ledger follows the data dir")
	require.Equal(t, "scripted/demo", c.ModelName)
	require.Equal(t, DefaultStopTimeout, c.StopTimeout)
	require.Equal(t, DefaultWorkflowCacheSize, c.WorkflowCacheSize)
	require.Same(t, slog.Default(), c.Logger)
	require.NoError(t, c.Validate())

	require.Empty(t, Config{ModelBaseURL: "http://m"}.WithDefaults().ModelName, "a real endpoint has no default model")
}

func TestConfigDefaultsAreAppliedOnce(t *testing.T) {
	t.Parallel()
	c := Config{}.WithDefaults()
	c.Namespace = "tenant-ns"
	c.TaskQueue = "" // cleared after the defaults: taken as it is
	again := c.WithDefaults()
	require.Equal(t, "tenant-ns", again.Namespace)
	require.Empty(t, again.TaskQueue, "a defaulted config is not defaulted again")

	d := withDefaults(c)
	require.Empty(t, d.TaskQueue, "the entry points take a config the command defaulted as it is")
	require.Equal(t, withDefaults(Config{}).TaskQueue, warden.DefaultTaskQueue, "and default one that is not")
}
