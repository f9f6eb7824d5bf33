// Package bounded is a map of bounded size, for the caches of a worker
// process: policy decisions, loaded conversations, approval times.
package bounded

import (
	"fmt"
	"sync"
)

// Map is a map of at most a fixed number of entries. Putting a new key
// into a full Map evicts the least recently used entry, the one whose key
// was longest ago put or got; Delete only removes. So a key in steady use
// stays, where a cache cleared when full would forget it with the rest.
//
// A Map is safe for concurrent use (its callers' caches are shared by
// concurrent activities); every operation takes its lock, and Get too,
// since it marks the entry used. Make one with New; do not copy it.
type Map[K comparable, V any] struct {
	mu  sync.Mutex
	max int
	m   map[K]*entry[K, V]
	// lru links the entries from the most recently used (lru.next) to the
	// least (lru.prev); lru itself is the sentinel of the ring.
	lru entry[K, V]
}

type entry[K comparable, V any] struct {
	key        K
	value      V
	prev, next *entry[K, V]
}

// New returns an empty Map of at most max entries. It panics if max < 1.
func New[K comparable, V any](max int) *Map[K, V] {
	if max < 1 {
		panic(fmt.Sprintf("bounded.New: max %d, want at least 1", max))
	}
	b := &Map[K, V]{max: max, m: make(map[K]*entry[K, V])}
	b.lru.prev, b.lru.next = &b.lru, &b.lru
	return b
}

// Get returns the value of key and whether it is there, marking it used.
func (b *Map[K, V]) Get(key K) (V, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.m[key]
	if !ok {
		var zero V
		return zero, false
	}
	b.unlink(e)
	b.pushFront(e)
	return e.value, true
}

// Put sets key to value, marking it used. A new key in a full Map takes
// the place of the least recently used entry.
func (b *Map[K, V]) Put(key K, value V) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.m[key]; ok {
		e.value = value
		b.unlink(e)
		b.pushFront(e)
		return
	}
	var e *entry[K, V]
	if len(b.m) >= b.max {
		e = b.lru.prev // evicted: its entry is reused
		b.unlink(e)
		delete(b.m, e.key)
	} else {
		e = new(entry[K, V])
	}
	e.key, e.value = key, value
	b.m[key] = e
	b.pushFront(e)
}

// Delete removes key, if it is there.
func (b *Map[K, V]) Delete(key K) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e, ok := b.m[key]; ok {
		b.unlink(e)
		delete(b.m, key)
	}
}

// Len is the number of entries, at most the Map's max.
func (b *Map[K, V]) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

func (b *Map[K, V]) unlink(e *entry[K, V]) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (b *Map[K, V]) pushFront(e *entry[K, V]) {
	e.prev, e.next = &b.lru, b.lru.next
	b.lru.next.prev = e
	b.lru.next = e
}
