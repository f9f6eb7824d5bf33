package tools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/wardenhq/warden/egress"
)

// HTTPGetArgs are the arguments of http_get.
type HTTPGetArgs struct {
	URL string `json:"url" jsonschema:"minLength=8,maxLength=4096,pattern=^https?://" jsonschema_description:"The http or https URL to fetch, e.g. https://example.com/status. Its host must be granted by policy."`
}

// maxHTTPBodyBytes bounds what http_get reads; the output cap usually cuts
// far earlier.
const maxHTTPBodyBytes = 4 << 20

// httpGet fetches a URL through the egress proxy the policy granted for
// this call: the sandbox has no other network.
func httpGet(ctx context.Context, _ Env, args HTTPGetArgs) (string, error) {
	u, err := url.Parse(args.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("url must be an absolute http or https URL, got %q", args.URL)
	}
	sock := os.Getenv(EnvEgressSocket)
	if sock == "" {
		return "", errors.New("no network: the policy granted no hosts to this call")
	}
	client := &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			// Every connection, http or https, is a CONNECT tunnel; TLS runs
			// end to end inside it.
			DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
				return egress.DialVia(ctx, sock, addr)
			},
			Proxy:                 nil,
			ForceAttemptHTTP2:     false,
			ResponseHeaderTimeout: 30 * time.Second,
		},
		// Redirects must stay within the granted hosts: the proxy refuses
		// others, so following is safe; cap the chain.
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return errors.New("stopped after 5 redirects")
			}
			return nil
		},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("User-Agent", "warden-http_get/1")
	resp, err := client.Do(req)
	if err != nil {
		return "", fmt.Errorf("GET %s: %w", u.Redacted(), err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHTTPBodyBytes))
	if err != nil {
		return "", fmt.Errorf("GET %s: read body: %w", u.Redacted(), err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "HTTP %s\n", resp.Status)
	for _, h := range []string{"Content-Type", "Content-Length", "Last-Modified", "Location"} {
		if v := resp.Header.Get(h); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", h, v)
		}
	}
	b.WriteString("\n")
	b.Write(body)
	if resp.StatusCode >= 400 {
		return "", errors.New(b.String())
	}
	return b.String(), nil
}
