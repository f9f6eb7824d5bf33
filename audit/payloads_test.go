package audit

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestPayloads: both backends store content by its address, idempotently,
// and say clearly when a reference is unknown.
func TestPayloads(t *testing.T) {
	t.Parallel()
	for name, b := range map[string]backend{"postgres": postgresBackend, "sqlite": sqliteBackend} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s, err := b.open(ctx, b.newDB(t))
			require.NoError(t, err)
			defer s.Close()
			data := []byte(`{"messages":[{"role":"user","content":"hi"}]}`)
			ref, err := s.PutPayload(ctx, data)
			require.NoError(t, err)
			require.Equal(t, PayloadRef(data), ref)
			again, err := s.PutPayload(ctx, data)
			require.NoError(t, err)
			require.Equal(t, ref, again, "storing the same bytes again is a no-op")
			got, err := s.Payload(ctx, ref)
			require.NoError(t, err)
			require.Equal(t, data, got)
			_, err = s.Payload(ctx, PayloadRef([]byte("nope")))
			require.ErrorIs(t, err, ErrPayloadNotFound)
		})
	}
}
