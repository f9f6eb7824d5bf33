package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/wardenhq/warden/audit"
	"github.com/wardenhq/warden/worker"
)

// loginFlags are the flags of one login role `audit migrate` creates.
type loginFlags struct {
	kind, group           string // "writer", audit.WriterRole
	name, passwordFile    string
	passwordEnv, fileEnv  string // WARDEN_AUDIT_<KIND>_PASSWORD(_FILE)
	tenants               []string
	tenantsFlag, nameFlag string
}

func (l *loginFlags) register(fs *pflag.FlagSet, kind, group string) {
	up := strings.ToUpper(kind)
	l.kind, l.group = kind, group
	l.nameFlag = kind + "-login"
	l.passwordEnv, l.fileEnv = "WARDEN_AUDIT_"+up+"_PASSWORD", "WARDEN_AUDIT_"+up+"_PASSWORD_FILE"
	fs.StringVar(&l.name, l.nameFlag, env("AUDIT_"+up+"_LOGIN", ""),
		fmt.Sprintf("create or update this login role as a member of %s (WARDEN_AUDIT_%s_LOGIN)", group, up))
	fs.StringVar(&l.passwordFile, kind+"-password-file", env("AUDIT_"+up+"_PASSWORD_FILE", ""),
		fmt.Sprintf("file holding the %s login's password (%s); or set %s. Never on the command line", kind, l.fileEnv, l.passwordEnv))
	if kind == "auditor" {
		l.tenantsFlag = "auditor-tenants"
		var def []string
		if v := env("AUDIT_AUDITOR_TENANTS", ""); v != "" {
			def = strings.Split(v, ",")
		}
		fs.StringSliceVar(&l.tenants, l.tenantsFlag, def, "tenants the auditor login may read, comma-separated; * for all (WARDEN_AUDIT_AUDITOR_TENANTS)")
	}
}

// login returns the login role the flags describe, nil when none.
func (l *loginFlags) login() (*audit.LoginRole, error) {
	envPassword := os.Getenv(l.passwordEnv)
	if l.name == "" {
		if l.passwordFile != "" || envPassword != "" || len(l.tenants) > 0 {
			return nil, fmt.Errorf("the %s login's password or tenants are set but no --%s: name the login role", l.kind, l.nameFlag)
		}
		return nil, nil
	}
	r := &audit.LoginRole{Name: l.name, Group: l.group, Password: envPassword}
	for _, t := range l.tenants {
		if t = strings.TrimSpace(t); t != "" {
			r.Tenants = append(r.Tenants, t)
		}
	}
	if l.passwordFile != "" {
		if envPassword != "" {
			return nil, fmt.Errorf("both %s and --%s-password-file are set: keep one", l.passwordEnv, l.kind)
		}
		b, err := os.ReadFile(l.passwordFile)
		if err != nil {
			return nil, fmt.Errorf("read the %s password: %w", l.kind, err)
		}
		r.Password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
		if r.Password == "" {
			return nil, fmt.Errorf("the %s password file %s is empty", l.kind, l.passwordFile)
		}
	}
	return r, nil
}

func newAuditMigrateCmd() *cobra.Command {
	var (
		cfg             worker.Config
		writer, auditor loginFlags
		format          string
	)
	cmd := &cobra.Command{
		Use:   "migrate [--database-url OWNER_URL] [--writer-login NAME] [--auditor-login NAME --auditor-tenants T,...]",
		Short: "Bring the audit schema up to date and create the writer/auditor roles and logins (run as the schema owner)",
		Long: "Apply the pending audit migrations and, on PostgreSQL, create the group roles warden_audit_writer and\n" +
			"warden_audit_auditor, restore any of their grants or row-level security policies that is missing, and create\n" +
			"or update the login roles named by --writer-login and --auditor-login. Connect as the owner of the audit\n" +
			"schema (a user with CREATEROLE to create roles). Idempotent: a second run changes nothing and says so.\n" +
			"Passwords come from files or the environment, never from the command line; the server receives only a\n" +
			"SCRAM-SHA-256 verifier. See docs/runbook.md, \"Database roles and migrations\".",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "table" && format != "json" {
				return fmt.Errorf("unknown output format %q: use table or json", format)
			}
			var opts audit.MigrateOptions
			for _, l := range []*loginFlags{&writer, &auditor} {
				r, err := l.login()
				if err != nil {
					return err
				}
				if r != nil {
					opts.Logins = append(opts.Logins, *r)
				}
			}
			cfg = cfg.WithDefaults()
			w := cmd.OutOrStdout()
			if cfg.DatabaseURL == "" {
				if len(opts.Logins) > 0 {
					return errors.New("login roles are PostgreSQL's: set --database-url (WARDEN_DATABASE_URL) to the owner's URL")
				}
				path := filepath.Join(cfg.DataDir, "audit.db")
				s, err := audit.OpenSQLite(cmd.Context(), path)
				if err != nil {
					return err
				}
				s.Close()
				fmt.Fprintf(w, "SQLite audit store %s is up to date (roles apply to PostgreSQL only)\n", path)
				return nil
			}
			rep, err := audit.MigratePostgres(cmd.Context(), cfg.DatabaseURL, opts)
			if err != nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(w)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			printMigrateReport(w, rep)
			return nil
		},
	}
	fs := cmd.Flags()
	storeFlags(fs, &cfg)
	writer.register(fs, "writer", audit.WriterRole)
	auditor.register(fs, "auditor", audit.AuditorRole)
	fs.StringVarP(&format, "output", "o", "table", "output format: table or json")
	return cmd
}

func printMigrateReport(w io.Writer, rep *audit.MigrateReport) {
	if len(rep.Applied) == 0 {
		fmt.Fprintf(w, "audit schema %q (as %s): migrations up to date at version %d\n", rep.Schema, rep.User, rep.Version)
	} else {
		fmt.Fprintf(w, "audit schema %q (as %s): applied %d migrations, now at version %d:\n", rep.Schema, rep.User, len(rep.Applied), rep.Version)
		for _, m := range rep.Applied {
			fmt.Fprintf(w, "  applied %s\n", m)
		}
	}
	if len(rep.Actions) == 0 {
		fmt.Fprintln(w, "roles, grants, policies and logins: already in place, nothing changed")
		return
	}
	fmt.Fprintln(w, "roles, grants, policies and logins:")
	for _, a := range rep.Actions {
		fmt.Fprintf(w, "  %s\n", a)
	}
}
