package tools_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/egress"
	"github.com/wardenhq/warden/sandbox"
	"github.com/wardenhq/warden/tools"
)

// TestHTTPGetThroughEgress runs http_get in the isolated sandbox: the
// granted host answers through the worker's proxy, an ungranted one is
// refused by the proxy and logged, and without a grant there is no network.
func TestHTTPGetThroughEgress(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "served %s", r.URL.Path)
	}))
	defer srv.Close()
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the ungranted server was reached")
	}))
	defer other.Close()

	var mu sync.Mutex
	var logged []egress.Connection
	proxy := egress.New(egress.Options{Log: func(c egress.Connection) {
		mu.Lock()
		defer mu.Unlock()
		logged = append(logged, c)
	}})
	r := mustRegistry(tools.Options{Egress: proxy})
	sb := newSandbox(t)
	require.Equal(t, sandbox.ModeIsolated, sb.Mode())
	get := func(url string, hosts ...string) (warden.ToolOutput, error) {
		args, _ := json.Marshal(tools.HTTPGetArgs{URL: url})
		return r.Run(context.Background(), sb, tools.RunInput{
			Tool: tools.ToolHTTPGet, Args: args, Workspace: t.TempDir(), Call: "wf/1/c1",
			Obligations: warden.Obligations{Hosts: hosts},
		})
	}
	granted := srv.Listener.Addr().String()

	out, err := get(srv.URL+"/status", granted)
	require.NoError(t, err)
	require.False(t, out.IsError, out.Content)
	require.Contains(t, out.Content, "HTTP 200 OK")
	require.Contains(t, out.Content, "served /status")

	out, err = get(other.URL+"/secret", granted)
	require.NoError(t, err)
	require.True(t, out.IsError)
	require.Contains(t, out.Content, "host not granted by policy")

	out, err = get(srv.URL + "/status")
	require.NoError(t, err)
	require.True(t, out.IsError)
	require.Contains(t, out.Content, "no network")

	mu.Lock()
	defer mu.Unlock()
	require.Len(t, logged, 2)
	require.True(t, logged[0].Allowed)
	require.Equal(t, granted, logged[0].Target)
	require.Equal(t, "wf/1/c1", logged[0].Call)
	require.False(t, logged[1].Allowed)
	require.Equal(t, other.Listener.Addr().String(), logged[1].Target)
}

func TestHostsWithoutEgressFailClosed(t *testing.T) {
	t.Parallel()
	r := mustRegistry(tools.Options{})
	_, err := r.Run(context.Background(), newSandbox(t), tools.RunInput{
		Tool: tools.ToolHTTPGet, Args: json.RawMessage(`{"url":"https://example.com/"}`), Workspace: t.TempDir(),
		Obligations: warden.Obligations{Hosts: []string{"example.com:443"}},
	})
	require.ErrorIs(t, err, sandbox.ErrSandbox)
	require.ErrorContains(t, err, "no egress proxy")
}
