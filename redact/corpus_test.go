package redact

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// sample is one line of testdata/corpus.txt.
type sample struct {
	line    int
	kind    string // "text" or "json"
	class   string // "none" for a negative sample
	input   string
	secrets []string
}

// secretClasses must reach 100% recall; the rest are personal data.
var secretClasses = []string{"private_key", "api_key", "aws_key", "jwt", "github_token", "slack_token", "bearer", "password"}

func loadCorpus(t testing.TB) []sample {
	t.Helper()
	f, err := os.Open("testdata/corpus.txt")
	require.NoError(t, err)
	defer f.Close()
	var out []sample
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, " ¦ ")
		require.GreaterOrEqual(t, len(parts), 3, "corpus line %d: want kind ¦ class ¦ input [¦ secret...]", n)
		s := sample{line: n, kind: parts[0], class: parts[1], input: strings.ReplaceAll(parts[2], `\n`, "\n"), secrets: parts[3:]}
		require.Contains(t, []string{"text", "json"}, s.kind, "corpus line %d", n)
		if s.class == "none" {
			require.Empty(t, s.secrets, "corpus line %d: a negative sample lists no secrets", n)
		} else {
			require.NotEmpty(t, s.secrets, "corpus line %d: a positive sample lists what must go", n)
			for _, sec := range s.secrets {
				require.Contains(t, s.input, sec, "corpus line %d: the secret must be in the input", n)
			}
		}
		if s.kind == "json" {
			require.True(t, json.Valid([]byte(s.input)), "corpus line %d: invalid JSON", n)
		}
		out = append(out, s)
	}
	require.NoError(t, sc.Err())
	return out
}

func (s sample) redact(t testing.TB, r *Redactor) string {
	if s.kind == "json" {
		out, _, err := r.JSON(json.RawMessage(s.input))
		require.NoError(t, err, "corpus line %d", s.line)
		require.True(t, json.Valid(out), "corpus line %d: output is not JSON: %s", s.line, out)
		return string(out)
	}
	out, _ := r.Text(s.input)
	return out
}

// TestCorpus measures recall per class and false positives on the corpus,
// prints the table, and holds the bar: 100% recall on secrets, at least
// 98% on personal data, no negative sample changed.
func TestCorpus(t *testing.T) {
	t.Parallel()
	r := Default()
	type tally struct{ caught, total int }
	byClass := map[string]*tally{}
	var missed, falsePos []string
	negatives := 0
	for _, s := range loadCorpus(t) {
		out := s.redact(t, r)
		if s.class == "none" {
			negatives++
			if out != s.input {
				falsePos = append(falsePos, fmt.Sprintf("line %d: %q -> %q", s.line, s.input, out))
			}
			continue
		}
		tl := byClass[s.class]
		if tl == nil {
			tl = &tally{}
			byClass[s.class] = tl
		}
		tl.total++
		leaked := ""
		for _, sec := range s.secrets {
			if strings.Contains(out, sec) {
				leaked = sec
				break
			}
		}
		if leaked == "" {
			tl.caught++
		} else {
			missed = append(missed, fmt.Sprintf("line %d (%s): %q survives in %q", s.line, s.class, leaked, out))
		}
	}
	var secret, pii tally
	classes := make([]string, 0, len(byClass))
	for c := range byClass {
		classes = append(classes, c)
	}
	slices.Sort(classes)
	var table strings.Builder
	fmt.Fprintf(&table, "%-14s %7s %6s\n", "class", "caught", "recall")
	for _, c := range classes {
		tl := byClass[c]
		fmt.Fprintf(&table, "%-14s %3d/%-3d %5.1f%%\n", c, tl.caught, tl.total, 100*float64(tl.caught)/float64(tl.total))
		sum := &pii
		if slices.Contains(secretClasses, c) {
			sum = &secret
		}
		sum.caught += tl.caught
		sum.total += tl.total
	}
	fmt.Fprintf(&table, "secrets: %d/%d, personal data: %d/%d, false positives: %d/%d negatives\n",
		secret.caught, secret.total, pii.caught, pii.total, len(falsePos), negatives)
	t.Log("\n" + table.String())
	for _, m := range missed {
		t.Log("missed " + m)
	}
	for _, f := range falsePos {
		t.Log("false positive " + f)
	}
	require.Equal(t, secret.total, secret.caught, "recall on secrets must be 100%%")
	require.GreaterOrEqual(t, float64(pii.caught), 0.98*float64(pii.total), "recall on personal data must be at least 98%%")
	require.Empty(t, falsePos, "negative samples must come out unchanged")
}

// TestGeneratedNegatives states the false-positive rate on values that
// look like personal data to a careless rule and are not: order numbers,
// timestamps, amounts, identifiers and hashes, generated in bulk.
func TestGeneratedNegatives(t *testing.T) {
	t.Parallel()
	r := Default()
	rng := rand.New(rand.NewPCG(1, 2))
	gens := map[string]func() string{
		"epoch_ms": func() string { return fmt.Sprint(1_600_000_000_000 + rng.Int64N(300_000_000_000)) },
		"epoch_ns": func() string { return fmt.Sprint(1_600_000_000_000_000_000 + rng.Int64N(300_000_000_000_000_000)) },
		"order_id": func() string { return fmt.Sprintf("ORD-%d-%06d", 2020+rng.IntN(8), rng.IntN(1_000_000)) },
		"amount":   func() string { return fmt.Sprintf("%d.%02d EUR", rng.IntN(1_000_000), rng.IntN(100)) },
		"cents":    func() string { return fmt.Sprintf(`{"amount_cents":%d}`, rng.Int64N(10_000_000_000)) },
		"datetime": func() string {
			return fmt.Sprintf("2026-%02d-%02dT%02d:%02d:%02d.%06dZ", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), rng.IntN(1_000_000))
		},
		"date_de": func() string {
			return fmt.Sprintf("%02d.%02d.2026 %02d:%02d", 1+rng.IntN(28), 1+rng.IntN(12), rng.IntN(24), rng.IntN(60))
		},
		"uuid": func() string {
			return fmt.Sprintf("%08x-%04x-4%03x-a%03x-%012x", rng.Uint32(), rng.IntN(1<<16), rng.IntN(1<<12), rng.IntN(1<<12), rng.Int64N(1<<48))
		},
		"sha256": func() string {
			return fmt.Sprintf("%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64())
		},
		"ipv4_port": func() string {
			return fmt.Sprintf("%d.%d.%d.%d:%d", rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(256), rng.IntN(65536))
		},
		"counter": func() string {
			return fmt.Sprintf("processed %d of %d rows", rng.IntN(100_000_000), rng.IntN(100_000_000))
		},
	}
	names := make([]string, 0, len(gens))
	for n := range gens {
		names = append(names, n)
	}
	slices.Sort(names)
	const per = 2000
	var total, fp int
	var report strings.Builder
	for _, n := range names {
		bad := 0
		for range per {
			s := gens[n]()
			var out string
			if json.Valid([]byte(s)) && strings.HasPrefix(s, "{") {
				o, _, err := r.JSON(json.RawMessage(s))
				require.NoError(t, err)
				out = string(o)
			} else {
				out, _ = r.Text(s)
			}
			if out != s {
				bad++
				if bad == 1 {
					t.Logf("%s: first false positive %q -> %q", n, s, out)
				}
			}
		}
		total += per
		fp += bad
		fmt.Fprintf(&report, "%-10s %4d/%d changed\n", n, bad, per)
	}
	rate := float64(fp) / float64(total)
	fmt.Fprintf(&report, "false-positive rate %.3f%% (%d of %d)\n", 100*rate, fp, total)
	t.Log("\n" + report.String())
	require.LessOrEqual(t, rate, 0.001, "false-positive rate on generated look-alikes")
}
