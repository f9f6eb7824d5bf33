package audit

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSealEvery(t *testing.T) {
	t.Parallel()
	s, _ := sqliteBackend.fresh(t)
	ctx := t.Context()
	require.NoError(t, s.Append(ctx, sampleEvents(2)...))
	stop := SealEvery(s, 20*time.Millisecond, func(err error) { t.Error(err) })
	require.Eventually(t, func() bool {
		seals, err := s.Seals(ctx, "acme")
		return err == nil && len(seals) == 1
	}, 5*time.Second, 10*time.Millisecond)
	// Appended just before stop: the final seal covers it.
	require.NoError(t, s.Append(ctx, sampleEvents(3)[2]))
	stop()
	stop() // idempotent
	report, err := Verify(ctx, s, VerifyOptions{})
	require.NoError(t, err)
	require.True(t, report.OK(), "%v", report.Breaks)
	require.Zero(t, report.Unsealed)
}
