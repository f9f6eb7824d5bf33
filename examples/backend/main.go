// Command backend is a small product backend that starts governed agent
// runs from HTTP requests with Warden's Go API, and reports on them.
//
//	POST /runs          {"tenant","requester","goal","model"} with an
//	                    Idempotency-Key header: starts a run (202), or
//	                    returns the run that key already started, open or
//	                    closed.
//	GET  /runs/{id}     where the run stands, or its result once it ended.
//
// Run it beside `warden dev` (or the compose stack):
//
//	go run ./examples/backend -address 127.0.0.1:7233 -listen :8080
//	curl -H 'Idempotency-Key: order-1234' -d '{"tenant":"acme","requester":"dana","goal":"refund order 1234"}' localhost:8080/runs
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log"
	"net/http"
	"os"
	"os/signal"
	"regexp"
	"syscall"
	"time"

	"go.temporal.io/sdk/client"

	"github.com/wardenhq/warden"
	wclient "github.com/wardenhq/warden/client"
)

func main() {
	address := flag.String("address", "127.0.0.1:7233", "Temporal frontend host:port")
	listen := flag.String("listen", ":8080", "HTTP listen address")
	flag.Parse()

	tc, err := client.Dial(client.Options{HostPort: *address})
	if err != nil {
		log.Fatal(err)
	}
	defer tc.Close()

	srv := &http.Server{Addr: *listen, Handler: newHandler(wclient.New(tc, "")), ReadHeaderTimeout: 5 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdown)
	}()
	log.Printf("backend listening on %s", *listen)
	if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
		log.Fatal(err)
	}
}

// startRequest is the body of POST /runs.
type startRequest struct {
	Tenant    string `json:"tenant"`
	Requester string `json:"requester"`
	Goal      string `json:"goal"`
	Model     string `json:"model,omitempty"`
}

// runView is what GET /runs/{id} returns.
type runView struct {
	WorkflowID string            `json:"workflow_id"`
	Status     warden.RunStatus  `json:"status"`
	Pending    int               `json:"pending_approvals,omitempty"`
	Result     *warden.RunResult `json:"result,omitempty"`
}

// idempotencyKey limits what callers may put into a workflow ID.
var idempotencyKey = regexp.MustCompile(`^[A-Za-z0-9._-]{1,100}$`)

func newHandler(c *wclient.Client) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /runs", func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if !idempotencyKey.MatchString(key) {
			http.Error(w, "an Idempotency-Key header of letters, digits, '.', '_' or '-' is required", http.StatusBadRequest)
			return
		}
		var in startRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&in); err != nil {
			http.Error(w, "body: "+err.Error(), http.StatusBadRequest)
			return
		}
		req := warden.RunRequest{Tenant: in.Tenant, Requester: in.Requester, Goal: in.Goal, Model: in.Model}
		// The workflow ID carries the tenant and the caller's key: a retried
		// request returns the run the first one started.
		h, err := c.Start(r.Context(), req, wclient.StartOptions{ID: "run-" + in.Tenant + "-" + key})
		switch {
		case errors.Is(err, warden.ErrInvalidRequest):
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Location", "/runs/"+h.WorkflowID)
		writeJSON(w, http.StatusAccepted, h)
	})
	mux.HandleFunc("GET /runs/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		st, err := c.Status(r.Context(), id)
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		view := runView{WorkflowID: id, Status: st.Status, Pending: st.PendingApprovals}
		if st.Status.Terminal() {
			res, err := c.Result(r.Context(), id)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
			view.Status, view.Result = res.Status, &res
		}
		writeJSON(w, http.StatusOK, view)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
