// The JSON walker: redacting every string, number and key of a JSON value, values under secret keys, and matches split across array items.

package redact

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
)

// JSON redacts every string and number in the JSON value raw, every object
// key, and every value under a secret key, and returns valid JSON.
func (r *Redactor) JSON(raw json.RawMessage) (json.RawMessage, map[string]int, error) {
	c := counts{}
	out, err := r.json1(raw, c)
	return out, c, err
}

func (r *Redactor) json1(raw json.RawMessage, c counts) (json.RawMessage, error) {
	if len(raw) == 0 {
		return raw, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("redact: data after the JSON value")
	}
	changed := false
	v = r.walk(v, c, &changed)
	if !changed {
		return raw, nil
	}
	out, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("redact: %w", err)
	}
	return out, nil
}

func (r *Redactor) walk(v any, c counts, changed *bool) any {
	switch v := v.(type) {
	case string:
		s := r.text1(v, c, allRules, 0)
		if s != v {
			*changed = true
		}
		return s
	case json.Number:
		s := r.text1(string(v), c, allRules, 0)
		if s != string(v) {
			*changed = true
			return s
		}
		return v
	case []any:
		r.spanning(v, c, changed)
		for i := range v {
			v[i] = r.walk(v[i], c, changed)
		}
		return v
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys) // deterministic placeholders for redacted keys
		for _, k := range keys {
			val := v[k]
			if rule, ok := r.secretKey(k); ok && !isEmpty(val) {
				c[rule]++
				*changed = true
				v[k] = placeholder(rule)
				continue
			}
			val = r.walk(val, c, changed)
			// A key can be a secret too ({"sk-proj-…": …}).
			if nk := r.text1(k, c, allRules, 0); nk != k {
				*changed = true
				delete(v, k)
				for n := 2; ; n++ {
					if _, taken := v[nk]; !taken {
						break
					}
					nk = strings.TrimSuffix(nk, fmt.Sprintf("#%d", n-1)) + fmt.Sprintf("#%d", n)
				}
				k = nk
			}
			v[k] = val
		}
		return v
	}
	return v
}

// spanWindow is how many neighbouring array items a match may span, and
// spanBytes how much of each item's edge is searched for one.
const (
	spanWindow = 4
	spanBytes  = 512
)

// spanning redacts, whole, the consecutive string items of an array that a
// match spans: a key split across argv items ("sk-pro", "j-…") is found in
// their concatenation.
func (r *Redactor) spanning(items []any, c counts, changed *bool) {
	if len(items) < 2 {
		return
	}
	marked := make([]string, len(items))
	for i := range items {
		if _, ok := items[i].(string); !ok {
			continue
		}
		// The window: the tail of item i, then whole (or the head of)
		// following string items.
		var b strings.Builder
		first := items[i].(string)
		if len(first) > spanBytes {
			first = first[len(first)-spanBytes:]
		}
		b.WriteString(first)
		bounds := []int{b.Len()} // bounds[k]: end of the k-th item in the window
		for j := i + 1; j < len(items) && j < i+spanWindow; j++ {
			s, ok := items[j].(string)
			if !ok {
				break
			}
			if len(s) > spanBytes {
				s = s[:spanBytes]
			}
			b.WriteString(s)
			bounds = append(bounds, b.Len())
		}
		if len(bounds) < 2 {
			continue
		}
		for _, h := range r.find(b.String()) {
			if h.end <= bounds[0] {
				continue // within item i alone: the item's own walk finds it
			}
			if h.start >= bounds[0] {
				continue // starts in a later item: its own window finds it
			}
			for k, end := range bounds {
				if k == 0 || bounds[k-1] < h.end {
					marked[i+k] = h.rule
				}
				if end >= h.end {
					break
				}
			}
		}
	}
	for i, rule := range marked {
		if rule != "" {
			items[i] = placeholder(rule)
			c[rule]++
			*changed = true
		}
	}
}

func (r *Redactor) secretKey(k string) (string, bool) {
	for _, rule := range r.keys {
		if rule.re.MatchString(fold(k).s) {
			return rule.Name, true
		}
	}
	return "", false
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case string:
		return v == ""
	}
	return false
}
