package audit

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"
)

// AnchorEntry is one line of an anchor file: a seal as its sealer wrote
// it, chained to the previous line by Prev (the hex SHA-256 of the
// previous line's bytes, "" for the first line).
type AnchorEntry struct {
	V          int       `json:"v"`
	Tenant     string    `json:"tenant"`
	Index      int64     `json:"seal_index"`
	Kind       string    `json:"kind"`
	ToSeq      int64     `json:"to_seq"`
	EventCount int64     `json:"event_count"`
	SealedAt   time.Time `json:"sealed_at"`
	SealHash   string    `json:"seal_hash"`
	KeyID      string    `json:"key_id,omitempty"`
	Signature  string    `json:"signature,omitempty"`
	Prev       string    `json:"prev"`
	// Line is the entry's line number in its file (not written).
	Line int `json:"-"`
}

// anchorVersion is the version of the anchor line format.
const anchorVersion = 1

// sealKey names one seal.
type sealKey struct {
	tenant string
	index  int64
}

// AnchorLog is an anchor file as read back for verification.
type AnchorLog struct {
	Path    string
	Entries []AnchorEntry
	// Problems are lines that do not chain (the file was edited); each
	// becomes a break of Verify.
	Problems []Break
}

// ReadAnchor reads and checks the chain of the anchor file at path. An
// unreadable file, or a line that is not an anchor entry, is an error: the
// anchor cannot vouch for anything then.
func ReadAnchor(path string) (*AnchorLog, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read anchor: %w", err)
	}
	defer f.Close()
	log, _, err := readAnchor(f, path)
	return log, err
}

// readAnchor reads an anchor from r, returning it and the hash of its
// last line.
func readAnchor(r io.Reader, path string) (*AnchorLog, string, error) {
	log := &AnchorLog{Path: path}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	prev := ""
	for line := 1; sc.Scan(); line++ {
		raw := sc.Bytes()
		var e AnchorEntry
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&e); err != nil || e.V != anchorVersion || e.Tenant == "" || e.Index <= 0 {
			return nil, "", fmt.Errorf("anchor %s line %d is not an anchor entry (version %d): %v", path, line, anchorVersion, err)
		}
		e.Line = line
		if e.Prev != prev {
			log.Problems = append(log.Problems, Break{Anchor: path, Line: line, Tenant: e.Tenant, SealIndex: e.Index,
				Problem: fmt.Sprintf("prev %s does not match the hash of line %d (%s): the anchor file was edited (a line removed, changed or inserted)", short(e.Prev), line-1, short(prev))})
		}
		sum := sha256.Sum256(raw)
		prev = hex.EncodeToString(sum[:])
		log.Entries = append(log.Entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("read anchor %s: %w", path, err)
	}
	return log, prev, nil
}

// Anchor appends the seals its sealer writes to an append-only file
// outside the database, one chained JSON line per seal, so that Verify can
// tell a seal deleted or replaced in the database (docs/audit.md). One
// process writes a file (an exclusive lock refuses a second); give each
// worker its own file and verify with all of them.
type Anchor struct {
	mu   sync.Mutex
	f    *os.File
	path string
	last string
	have map[sealKey]string
	// top is each tenant's highest anchored seal index.
	top map[string]int64
}

// OpenAnchor opens (creating it with mode 0600) the anchor file at path
// for appending, after checking the lines already there.
func OpenAnchor(path string) (*Anchor, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open anchor: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("open anchor %s: another sealer holds it (give each worker its own anchor file): %w", path, err)
	}
	log, last, err := readAnchor(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	if len(log.Problems) > 0 {
		f.Close()
		return nil, fmt.Errorf("open anchor: %s", log.Problems[0])
	}
	a := &Anchor{f: f, path: path, last: last, have: map[sealKey]string{}, top: map[string]int64{}}
	for _, e := range log.Entries {
		a.note(e)
	}
	return a, nil
}

func (a *Anchor) note(e AnchorEntry) {
	a.have[sealKey{e.Tenant, e.Index}] = e.SealHash
	a.top[e.Tenant] = max(a.top[e.Tenant], e.Index)
}

// Path is the anchor file's path.
func (a *Anchor) Path() string { return a.path }

// Record appends seals not anchored yet, in one write, and syncs the file.
func (a *Anchor) Record(seals ...Seal) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return errors.New("anchor is closed")
	}
	var buf bytes.Buffer
	last := a.last
	var added []AnchorEntry
	for _, s := range seals {
		if h, ok := a.have[sealKey{s.Tenant, s.Index}]; ok && h == s.Hash {
			continue
		}
		e := AnchorEntry{V: anchorVersion, Tenant: s.Tenant, Index: s.Index, Kind: s.Kind, ToSeq: s.ToSeq,
			EventCount: s.EventCount, SealedAt: s.SealedAt.UTC(), SealHash: s.Hash, KeyID: s.KeyID,
			Signature: s.Signature, Prev: last}
		line, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("anchor seal: %w", err)
		}
		sum := sha256.Sum256(line)
		last = hex.EncodeToString(sum[:])
		buf.Write(line)
		buf.WriteByte('\n')
		added = append(added, e)
	}
	if buf.Len() == 0 {
		return nil
	}
	if _, err := a.f.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("anchor seal: write %s: %w", a.path, err)
	}
	if err := a.f.Sync(); err != nil {
		return fmt.Errorf("anchor seal: sync %s: %w", a.path, err)
	}
	a.last = last
	for _, e := range added {
		a.note(e)
	}
	return nil
}

// CatchUp anchors the store's seals that come after each tenant's last
// anchored seal (those another process wrote, such as `warden audit
// retain`'s). An empty anchor takes every seal as it is (trust on first
// use: start the anchor with the store); after that only seals signed by
// key are taken, so a seal forged with database rights alone is never
// anchored. It returns how many seals it anchored.
func (a *Anchor) CatchUp(ctx context.Context, store Store, key *PublicKey) (int, error) {
	seals, err := store.Seals(ctx, "")
	if err != nil {
		return 0, fmt.Errorf("anchor catch-up: %w", err)
	}
	a.mu.Lock()
	first := len(a.have) == 0
	top := make(map[string]int64, len(a.top))
	for t, i := range a.top {
		top[t] = i
	}
	a.mu.Unlock()
	var take []Seal
	for _, s := range seals {
		if s.Index <= top[s.Tenant] {
			continue
		}
		if !first {
			if key == nil || s.Signature == "" || checkSignature(&s, map[string]PublicKey{key.KeyID: *key}) != "" {
				continue
			}
		}
		take = append(take, s)
	}
	return len(take), a.Record(take...)
}

// Close closes the file (and releases its lock).
func (a *Anchor) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.f == nil {
		return nil
	}
	err := a.f.Close()
	a.f = nil
	return err
}

// checkAnchors compares the database's seals (all seals of the tenants in
// scope) with the anchors: a seal anchored but missing from the
// database, a seal whose hash differs from its anchor, and a seal no
// anchor holds are each a break naming the seal and the anchor line.
func (v *verifier) checkAnchors(seals []Seal, logs []*AnchorLog, tenant string, keys map[string]PublicKey) {
	db := make(map[sealKey]*Seal, len(seals))
	for i := range seals {
		db[sealKey{seals[i].Tenant, seals[i].Index}] = &seals[i]
	}
	anchored := map[sealKey]bool{}
	for _, log := range logs {
		for _, p := range log.Problems {
			if tenant == "" || p.Tenant == tenant {
				v.add(p)
			}
		}
		for _, e := range log.Entries {
			if tenant != "" && e.Tenant != tenant {
				continue
			}
			v.anchored++
			k := sealKey{e.Tenant, e.Index}
			anchored[k] = true
			fail := func(format string, args ...any) {
				v.add(Break{Tenant: e.Tenant, SealIndex: e.Index, Anchor: log.Path, Line: e.Line, Problem: fmt.Sprintf(format, args...)})
			}
			if e.Signature != "" && len(keys) > 0 {
				probe := Seal{KeyID: e.KeyID, Signature: e.Signature, Hash: e.SealHash, SealedAt: e.SealedAt}
				if p := checkSignature(&probe, keys); p != "" {
					fail("anchored seal %s", p)
				}
			}
			s, ok := db[k]
			switch {
			case !ok:
				fail("anchored (hash %s, %d events to seq %d, sealed at %s) but missing from the database: the seal and the events it covers were deleted (tail deletion, truncation or a wiped tenant), or you may not see this tenant",
					short(e.SealHash), e.EventCount, e.ToSeq, e.SealedAt.Format(time.RFC3339))
			case s.Hash != e.SealHash:
				fail("differs from its anchor: the anchor has hash %s, the database %s: the seal was replaced", short(e.SealHash), short(s.Hash))
			}
		}
	}
	for i := range seals {
		s := &seals[i]
		if !anchored[sealKey{s.Tenant, s.Index}] {
			v.add(Break{Tenant: s.Tenant, SealIndex: s.Index,
				Problem: fmt.Sprintf("is in no anchor given (--anchor): written without the sealer (forged with database rights), or by a sealer whose anchor was not given (hash %s)", short(s.Hash))})
		}
	}
}
