package bounded_test

import (
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden/internal/bounded"
)

func TestMapKeepsWhatItIsGiven(t *testing.T) {
	t.Parallel()
	m := bounded.New[string, int](3)
	_, ok := m.Get("a")
	require.False(t, ok)
	m.Put("a", 1)
	m.Put("b", 2)
	v, ok := m.Get("a")
	require.True(t, ok)
	require.Equal(t, 1, v)
	m.Put("a", 10)
	v, _ = m.Get("a")
	require.Equal(t, 10, v, "Put replaces the value")
	require.Equal(t, 2, m.Len(), "and does not add an entry")
	m.Delete("a")
	m.Delete("nope")
	_, ok = m.Get("a")
	require.False(t, ok)
	require.Equal(t, 1, m.Len())
}

func TestMapEvictsTheLeastRecentlyUsed(t *testing.T) {
	t.Parallel()
	m := bounded.New[string, int](3)
	m.Put("a", 1)
	m.Put("b", 2)
	m.Put("c", 3)
	m.Get("a")    // a is used: b is now the least recent
	m.Put("d", 4) // full: evicts b
	require.Equal(t, 3, m.Len())
	_, ok := m.Get("b")
	require.False(t, ok, "b was the least recently used")
	for _, k := range []string{"a", "c", "d"} {
		_, ok := m.Get(k)
		require.True(t, ok, k)
	} // order now, most recent first: d c a
	m.Put("c", 30) // replacing is a use: d's turn is after a's
	m.Put("e", 5)  // evicts a
	_, ok = m.Get("a")
	require.False(t, ok)
	m.Put("f", 6) // evicts d
	_, ok = m.Get("d")
	require.False(t, ok)
	v, ok := m.Get("c")
	require.True(t, ok)
	require.Equal(t, 30, v)
	require.Equal(t, 3, m.Len())
}

func TestMapDeleteFreesARoom(t *testing.T) {
	t.Parallel()
	m := bounded.New[int, int](2)
	m.Put(1, 1)
	m.Put(2, 2)
	m.Delete(1)
	m.Put(3, 3) // room left by 1: nothing evicted
	for _, k := range []int{2, 3} {
		_, ok := m.Get(k)
		require.True(t, ok, k)
	}
}

func TestMapOfOne(t *testing.T) {
	t.Parallel()
	m := bounded.New[int, string](1)
	for i := range 5 {
		m.Put(i, strconv.Itoa(i))
		require.Equal(t, 1, m.Len())
	}
	v, ok := m.Get(4)
	require.True(t, ok)
	require.Equal(t, "4", v)
}

func TestNewRefusesNoRoom(t *testing.T) {
	t.Parallel()
	require.Panics(t, func() { bounded.New[int, int](0) })
}

func TestMapUnderConcurrentUseStaysBounded(t *testing.T) {
	t.Parallel()
	m := bounded.New[int, int](64)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				k := (g*2000 + i) % 200
				m.Put(k, i)
				if v, ok := m.Get(k); ok && v < 0 {
					t.Error("negative value")
				}
				if i%7 == 0 {
					m.Delete(k)
				}
			}
		})
	}
	wg.Wait()
	require.LessOrEqual(t, m.Len(), 64)
}

func BenchmarkMapPutGet(b *testing.B) {
	m := bounded.New[int, int](1024)
	for i := 0; b.Loop(); i++ {
		m.Put(i%4096, i)
		m.Get((i * 7) % 4096)
	}
}
