package policies

import (
	"crypto/sha256"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
)

// TestDecisionCacheIsBoundedAndKeepsTheDecisionInUse: past its bound the
// cache forgets the least recently used decision, not the one a re-check
// keeps asking for, and what it hands out is a copy.
func TestDecisionCacheIsBoundedAndKeepsTheDecisionInUse(t *testing.T) {
	t.Parallel()
	c := newDecisionCache()
	hot := sha256.Sum256([]byte("hot"))
	c.put(hot, warden.Decision{Allow: true, Reasons: []string{"hot"}})
	for i := range maxCachedDecisions + 10 {
		c.put(sha256.Sum256([]byte(strconv.Itoa(i))), warden.Decision{})
		_, ok := c.get(hot)
		require.True(t, ok, "put %d", i)
	}
	require.Equal(t, maxCachedDecisions, c.m.Len())
	_, ok := c.get(sha256.Sum256([]byte("0")))
	require.False(t, ok, "the oldest unused decision went")

	d, _ := c.get(hot)
	d.Reasons[0] = "changed"
	again, _ := c.get(hot)
	require.Equal(t, []string{"hot"}, again.Reasons)
}
