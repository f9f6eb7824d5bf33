package main

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/worker"
)

func newAuditVerifyCmd() *cobra.Command {
	var (
		cfg     worker.Config
		opts    audit.VerifyOptions
		since   string
		file    string
		format  string
		keys    []string
		anchors []string
	)
	cmd := &cobra.Command{
		Use:   "verify [--tenant T] [--workflow ID] [--since T] | --file export.jsonl [--pubkey K]... [--anchor FILE]...",
		Short: "Check the audit log's hash chains and seals; exit 1 naming the first broken link",
		Long: "Recompute every event's hash, check each link to the previous event of its workflow, the seal chain\n" +
			"of each tenant, and that every sealed run head and sealed event count is still there unless a retention\n" +
			"seal (warden audit retain) records it as dropped. With --file, check an export (warden audit export)\n" +
			"offline. With --pubkey, check the seals' signatures; with --anchor, compare the seals with anchor files and\n" +
			"name any seal missing, extra or different. A scope with nothing visible to check is an error, not OK.\n" +
			"See docs/audit.md for the encoding.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("unknown output format %q: use table or json", format)
			}
			var (
				report audit.VerifyReport
				err    error
			)
			for _, k := range keys {
				pk, err := audit.ParsePublicKey(k)
				if err != nil {
					return err
				}
				opts.PublicKeys = append(opts.PublicKeys, pk)
			}
			for _, a := range anchors {
				log, err := audit.ReadAnchor(a)
				if err != nil {
					return fmt.Errorf("%w: the anchor cannot vouch for the seals; nothing was checked", err)
				}
				opts.Anchors = append(opts.Anchors, log)
			}
			if file != "" {
				if opts.Tenant != "" || opts.WorkflowID != "" || since != "" {
					return fmt.Errorf("--file checks the whole export: drop --tenant, --workflow and --since")
				}
				fh, err := os.Open(file)
				if err != nil {
					return err
				}
				defer fh.Close()
				if report, err = audit.VerifyFileWith(fh, audit.FileOptions{PublicKeys: opts.PublicKeys,
					RequireSigned: opts.RequireSigned, Anchors: opts.Anchors}); err != nil {
					return err
				}
			} else {
				if opts.Since, err = parseTimeFlag("--since", since, time.Now()); err != nil {
					return err
				}
				store, err := openAuditStore(cmd, cfg)
				if err != nil {
					return err
				}
				defer store.Close()
				if report, err = audit.Verify(cmd.Context(), store, opts); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				if err := enc.Encode(report); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(w, "checked %d events in %d chains and %d seals; %d events not sealed yet\n",
					report.Events, report.Chains, report.Seals, report.Unsealed)
				switch {
				case report.SignaturesChecked:
					fmt.Fprintf(w, "signatures: %d seals signed and checked, %d unsigned\n", report.Signed, report.Unsigned)
				case report.Signed > 0:
					fmt.Fprintf(w, "signatures NOT checked (%d signed seals, %d unsigned): give --pubkey\n", report.Signed, report.Unsigned)
				default:
					fmt.Fprintf(w, "signatures: none (%d unsigned seals)\n", report.Unsigned)
				}
				if report.Manifest != "" {
					fmt.Fprintf(w, "export manifest: %s\n", report.Manifest)
				}
				if len(opts.Anchors) > 0 {
					fmt.Fprintf(w, "anchors: %d entries in %d file(s) compared with the seals\n", report.Anchored, len(opts.Anchors))
				} else {
					fmt.Fprintln(w, "anchors: none given (a deleted last seal and its events cannot be detected without --anchor)")
				}
				for i, b := range report.Breaks {
					label := "BROKEN"
					if i == 0 {
						label = "FIRST BROKEN LINK"
					}
					fmt.Fprintf(w, "%s: %s\n", label, b)
				}
				if report.OK() {
					fmt.Fprintln(w, "OK")
				}
			}
			if !report.OK() {
				return fmt.Errorf("%w: %d problem(s), first: %s", audit.ErrTampered, len(report.Breaks), report.Breaks[0])
			}
			return nil
		},
	}
	fs := cmd.Flags()
	storeFlags(fs, &cfg)
	fs.StringVar(&opts.Tenant, "tenant", "", "only this tenant")
	fs.StringVar(&opts.WorkflowID, "workflow", "", "only this workflow's chain (and its sealed heads)")
	fs.StringVar(&since, "since", "", "only events at or after this time: a duration ago (1h) or RFC3339")
	fs.StringVar(&file, "file", "", "verify an export file offline instead of the database")
	fs.StringVarP(&format, "output", "o", "table", "output format: table or json")
	fs.StringArrayVar(&keys, "pubkey", nil, "seal public key: a .pub file (warden audit keygen) or KEYID=BASE64; repeat for rotated keys")
	fs.BoolVar(&opts.RequireSigned, "require-signed", false, "every seal must be signed (unsigned seals written before signing are breaks too)")
	fs.StringArrayVar(&anchors, "anchor", nil, "anchor file to compare the seals with; repeat for one file per sealer")
	return cmd
}

func newAuditExportCmd() *cobra.Command {
	var (
		cfg          worker.Config
		opts         audit.ExportOptions
		since, until string
		file         string
		signKey      string
	)
	cmd := &cobra.Command{
		Use:   "export [--tenant T] [--since T] [--until T] [--file out.jsonl] [--sign-key FILE]",
		Short: "Write events with their hashes and the seals as JSON lines, verifiable offline",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			var err error
			if opts.Since, err = parseTimeFlag("--since", since, now); err != nil {
				return err
			}
			if opts.Until, err = parseTimeFlag("--until", until, now); err != nil {
				return err
			}
			if signKey != "" {
				if opts.Signer, err = audit.LoadSealSigner(signKey); err != nil {
					return err
				}
			}
			store, err := openAuditStore(cmd, cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			w := cmd.OutOrStdout()
			if file != "" {
				fh, err := os.OpenFile(file, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
				if err != nil {
					return err
				}
				defer fh.Close()
				w = fh
			}
			n, err := audit.Export(cmd.Context(), store, w, opts)
			if err != nil {
				return err
			}
			signed := "an unsigned manifest (give --sign-key to prove completeness)"
			if opts.Signer != nil {
				signed = "a manifest signed with key " + opts.Signer.KeyID
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %d events and %s\n", n, signed)
			return nil
		},
	}
	fs := cmd.Flags()
	storeFlags(fs, &cfg)
	fs.StringVar(&opts.Tenant, "tenant", "", "only this tenant")
	fs.StringVar(&since, "since", "", "events at or after: a duration ago (168h) or RFC3339")
	fs.StringVar(&until, "until", "", "events before: a duration ago or RFC3339")
	fs.StringVar(&file, "file", "", "write to this new file instead of stdout")
	fs.StringVar(&signKey, "sign-key", "", "Ed25519 key (warden audit keygen) that signs the export's manifest, so verify --file --pubkey proves nothing was dropped")
	return cmd
}

func newAuditSealCmd() *cobra.Command {
	var (
		cfg    worker.Config
		tenant string
		sf     sealerFlags
	)
	cmd := &cobra.Command{
		Use:   "seal [--tenant T] [--seal-key FILE] [--anchor FILE]",
		Short: "Seal the events appended since the last seal (every tenant by default)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			store, err := openAuditStore(cmd, cfg)
			if err != nil {
				return err
			}
			defer store.Close()
			anchor, _, err := sf.setUp(store)
			if err != nil {
				return err
			}
			seals, err := store.Seal(cmd.Context(), tenant)
			if err != nil {
				return err
			}
			if anchor != nil {
				defer anchor.Close()
				if err := anchor.Record(seals...); err != nil {
					return err
				}
			}
			for _, s := range seals {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\tseal #%d\tseq %d..%d\t%d events\t%d runs\t%s\n",
					s.Tenant, s.Index, s.FromSeq+1, s.ToSeq, s.EventCount, len(s.Heads), s.Hash)
			}
			if len(seals) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "nothing new to seal")
			}
			return nil
		},
	}
	storeFlags(cmd.Flags(), &cfg)
	sf.register(cmd.Flags())
	cmd.Flags().StringVar(&tenant, "tenant", "", "only this tenant")
	return cmd
}
