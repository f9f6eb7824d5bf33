package main

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/worker"
)

func newAuditRetainCmd() *cobra.Command {
	var (
		cfg    worker.Config
		opts   audit.RetainOptions
		before string
		format string
		sf     sealerFlags
	)
	cmd := &cobra.Command{
		Use:   "retain --tenant T --before <2160h | RFC3339> [--dry-run]",
		Short: "Drop a tenant's runs that ended before a cutoff, recorded in a retention seal",
		Long: "Drop every run (hash chain) of the tenant whose events all occurred before the cutoff, and in the same\n" +
			"transaction append a retention seal recording what was dropped, so verify can tell it from a deletion.\n" +
			"Runs are dropped whole, never in part. On PostgreSQL, connect as the owner of the audit schema.\n" +
			"Keep the printed seal hash outside the database. See docs/audit.md, \"Retention\".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("unknown output format %q: use table or json", format)
			}
			if opts.Tenant == "" {
				return errors.New("--tenant is required: retention drops one tenant's runs at a time")
			}
			if before == "" {
				return errors.New("--before is required: a duration ago (2160h for 90 days) or an RFC3339 time")
			}
			var err error
			if opts.Before, err = parseTimeFlag("--before", before, time.Now()); err != nil {
				return err
			}
			store, err := openAuditStore(cmd, cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			anchor, key, err := sf.setUp(store)
			if err != nil {
				return err
			}
			seal, err := store.Retain(cmd.Context(), opts)
			if err == nil && anchor != nil && !opts.DryRun {
				defer anchor.Close()
				// The retention seal, then the checkpoint Retain wrote
				// before it (signed with key).
				if err = anchor.Record(seal); err == nil {
					_, err = anchor.CatchUp(cmd.Context(), store, key)
				}
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(seal)
			}
			printRetention(w, seal, opts.DryRun)
			return nil
		},
	}
	fs := cmd.Flags()
	storeFlags(fs, &cfg)
	sf.register(fs)
	fs.StringVar(&opts.Tenant, "tenant", "", "the tenant whose old runs are dropped (required)")
	fs.StringVar(&before, "before", "", "cutoff: drop runs whose every event is older; a duration ago (2160h) or RFC3339 (required)")
	fs.BoolVar(&opts.DryRun, "dry-run", false, "list what would be dropped; change nothing")
	fs.StringVar(&opts.Actor, "actor", cmp.Or(os.Getenv("USER"), "unknown"), "who orders the drop, recorded in the seal")
	fs.StringVarP(&format, "output", "o", "table", "output format: table or json")
	return cmd
}

// printRetention prints the runs a retention seal drops and the seal.
func printRetention(w io.Writer, s audit.Seal, dryRun bool) {
	r := s.Retention
	verb := "dropped"
	if dryRun {
		verb = "would drop"
	}
	fmt.Fprintf(w, "%s %d events in %d runs of tenant %s that ended before %s:\n",
		verb, r.Events, len(r.Chains), s.Tenant, r.Cutoff.Format(time.RFC3339))
	fmt.Fprintln(w, "WORKFLOW\tEVENTS\tSEQ\tHEAD HASH")
	for _, c := range r.Chains {
		fmt.Fprintf(w, "%s\t%d\t%d..%d\t%s\n", c.WorkflowID, c.Events, c.FirstSeq, c.LastSeq, c.HeadHash)
	}
	if dryRun {
		fmt.Fprintln(w, "dry run: nothing was dropped")
		return
	}
	fmt.Fprintf(w, "%s\tretention seal #%d\tby %s at %s\tdigest %s\t%s\n",
		s.Tenant, s.Index, r.Actor, s.SealedAt.Format(time.RFC3339), r.Digest, s.Hash)
}
