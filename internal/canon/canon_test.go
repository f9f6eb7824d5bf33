package canon

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestJSON(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		` { "b" : [1, 2.50, -0, 1.5e3, 1E-7, 0.0, 100], "a": "x" } `: `{"a":"x","b":[1,2.5,0,1500,0.0000001,0,100]}`,
		`{"a":1,"a":2}`:                 `{"a":2}`,
		`"<&> \u00e9 \u2028 \t \u0001"`: "\"<&> é \u2028 \\t \\u0001\"",
		`{"é":1,"z":2,"A":3}`:           `{"A":3,"z":2,"é":1}`,
		`12345678901234567890123456789`: `12345678901234567890123456789`,
		`-12.3400e2`:                    `-1234`,
		`[true,false,null,{}]`:          `[true,false,null,{}]`,
		`"\ud800"`:                      "\"\ufffd\"",
	} {
		got, err := JSON([]byte(in))
		require.NoError(t, err, in)
		require.Equal(t, want, string(got), in)
	}
	for _, bad := range []string{`{`, `1 2`, `1e1001`, ``} {
		_, err := JSON([]byte(bad))
		require.Error(t, err, bad)
	}
}

func FuzzJSON(f *testing.F) {
	for _, seed := range []string{`{"a":[1,2.5e-3,"x"]}`, `"\u0000"`, `-0.0`, `{"b":{"a":null}}`, `1e999`, `"\ud83d\ude00"`} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := JSON(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid output %q from %q", out, in)
		}
		again, err := JSON(out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("not idempotent: %q -> %q (%v)", out, again, err)
		}
	})
}
