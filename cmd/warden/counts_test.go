package main

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// Every outcome a run can count is shown, in warden.Outcomes' order (the
// CLI once dropped too_many_calls).
func TestCountsStringShowsEveryOutcome(t *testing.T) {
	m := map[string]int{}
	want := ""
	for i, o := range warden.Outcomes {
		m[string(o)] = i + 1
		if want != "" {
			want += " "
		}
		want += string(o) + "=" + string(rune('1'+i))
	}
	require.Equal(t, want, countsString(m))
	require.Equal(t, "denied=2", countsString(map[string]int{"denied": 2, "executed": 0}))
}
