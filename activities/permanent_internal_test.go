package activities

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

type notRetryable struct{}

func (notRetryable) Error() string   { return "over budget" }
func (notRetryable) Permanent() bool { return true }

func TestPermanentErrorsAreFoundThroughWrapping(t *testing.T) {
	require.True(t, permanent(fmt.Errorf("sandbox: %w: %w", errors.New("quota"), notRetryable{})))
	require.False(t, permanent(errors.New("exec failed")))
	require.False(t, permanent(nil))
}
