package audit

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The login roles MigratePostgres creates or updates (LoginRole), and
// their SCRAM-SHA-256 password verifiers.

var roleName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (l LoginRole) validate() error {
	if !roleName.MatchString(l.Name) {
		return fmt.Errorf("login %q: a role name is lower-case letters, digits and '_', starting with a letter or '_', at most 63 characters", l.Name)
	}
	if l.Name == WriterRole || l.Name == AuditorRole || strings.HasPrefix(l.Name, "pg_") {
		return fmt.Errorf("login %q: pick a name of its own, not a group or system role", l.Name)
	}
	if l.Group != WriterRole && l.Group != AuditorRole {
		return fmt.Errorf("login %s: group %q is neither %s nor %s", l.Name, l.Group, WriterRole, AuditorRole)
	}
	if len(l.Tenants) > 0 && l.Group != AuditorRole {
		return fmt.Errorf("login %s: tenants apply to %s logins only", l.Name, AuditorRole)
	}
	for _, t := range l.Tenants {
		if t == "" {
			return fmt.Errorf("login %s: empty tenant", l.Name)
		}
	}
	if l.Password != "" && !scramVerifier.MatchString(l.Password) {
		for _, r := range l.Password {
			if r < 0x20 || r > 0x7e {
				return fmt.Errorf("login %s: the password must be printable ASCII (e.g. `openssl rand -base64 32`) or a SCRAM-SHA-256 verifier", l.Name)
			}
		}
	}
	return nil
}

// ensureLogin creates or updates one login role.
func ensureLogin(ctx context.Context, tx pgx.Tx, rep *MigrateReport, l LoginRole) error {
	if l.Name == rep.User {
		return fmt.Errorf("it is the migrating user %s: the worker and auditors need logins of their own", rep.User)
	}
	id := pgx.Identifier{l.Name}.Sanitize()
	var exists, canLogin, super, createRole, bypassRLS, owns bool
	err := tx.QueryRow(ctx, `SELECT true, rolcanlogin, rolsuper, rolcreaterole, rolbypassrls,
		EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relowner = r.oid)
		FROM pg_roles r WHERE rolname = $1`, l.Name).Scan(&exists, &canLogin, &super, &createRole, &bypassRLS, &owns)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	switch {
	case super || createRole || bypassRLS:
		return fmt.Errorf("the role exists with SUPERUSER, CREATEROLE or BYPASSRLS, which would defeat the %s limits: pick another name", l.Group)
	case owns:
		return fmt.Errorf("the role owns tables of schema %s, and an owner bypasses the limits of %s: pick another name", rep.Schema, l.Group)
	}
	verifier := ""
	if l.Password != "" {
		if verifier, err = scramSHA256(l.Password); err != nil {
			return err
		}
	}
	passwordClause := ""
	if verifier != "" {
		// A verifier is base64, digits, '$' and ':': nothing to escape.
		passwordClause = " PASSWORD '" + verifier + "'"
	}
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE ROLE "+id+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS"+passwordClause); err != nil {
			if isInsufficientPrivilege(err) {
				return fmt.Errorf("user %s may not create roles: connect as a user with CREATEROLE: %w", rep.User, err)
			}
			return fmt.Errorf("create role: %w", err)
		}
		what := "created login " + l.Name
		if verifier == "" {
			what += " without a password (it can log in only where pg_hba.conf needs none)"
		} else {
			what += " with the given password (stored as a SCRAM-SHA-256 verifier)"
		}
		rep.Actions = append(rep.Actions, what)
	} else {
		if !canLogin {
			if _, err := tx.Exec(ctx, "ALTER ROLE "+id+" LOGIN"); err != nil {
				return fmt.Errorf("allow login: %w", err)
			}
			rep.Actions = append(rep.Actions, "allowed role "+l.Name+" to log in")
		}
		same, err := samePassword(ctx, tx, l.Name, l.Password)
		if err != nil {
			return err
		}
		if verifier != "" && !same {
			if _, err := tx.Exec(ctx, "ALTER ROLE "+id+passwordClause); err != nil {
				return fmt.Errorf("set password: %w", err)
			}
			rep.Actions = append(rep.Actions, "set the password of login "+l.Name)
		}
	}
	var member bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_auth_members m
		WHERE m.roleid = (SELECT oid FROM pg_roles WHERE rolname = $2) AND m.member = (SELECT oid FROM pg_roles WHERE rolname = $1))`,
		l.Name, l.Group).Scan(&member); err != nil {
		return err
	}
	if !member {
		if _, err := tx.Exec(ctx, "GRANT "+pgx.Identifier{l.Group}.Sanitize()+" TO "+id); err != nil {
			return fmt.Errorf("grant %s: %w", l.Group, err)
		}
		rep.Actions = append(rep.Actions, fmt.Sprintf("made login %s a member of %s", l.Name, l.Group))
	}
	tenants := slices.Clone(l.Tenants)
	slices.Sort(tenants)
	for _, t := range slices.Compact(tenants) {
		tag, err := tx.Exec(ctx, "INSERT INTO audit_tenant_access (role_name, tenant) VALUES ($1, $2) ON CONFLICT DO NOTHING", l.Name, t)
		if err != nil {
			return fmt.Errorf("grant tenant %s: %w", t, err)
		}
		if tag.RowsAffected() > 0 {
			rep.Actions = append(rep.Actions, fmt.Sprintf("let auditor %s read tenant %s", l.Name, t))
		}
	}
	return nil
}

// samePassword reports whether login's stored password is password,
// which only a superuser can read; for others it is false and the password
// is set again.
func samePassword(ctx context.Context, tx pgx.Tx, login, password string) (bool, error) {
	if password == "" {
		return false, nil
	}
	var super bool
	if err := tx.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || !super {
		return false, err
	}
	var stored *string
	if err := tx.QueryRow(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = $1", login).Scan(&stored); err != nil {
		return false, err
	}
	if stored == nil {
		return false, nil
	}
	if scramVerifier.MatchString(password) {
		return *stored == password, nil
	}
	// SCRAM-SHA-256$<iterations>:<salt>$<stored key>:<server key>
	var iterations int
	var rest string
	if _, err := fmt.Sscanf(*stored, "SCRAM-SHA-256$%d:%s", &iterations, &rest); err != nil {
		return false, nil // md5 or another format: set it again
	}
	saltB64, _, _ := strings.Cut(rest, "$")
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil || iterations <= 0 {
		return false, nil
	}
	again, err := scramSHA256WithSalt(password, salt, iterations)
	return err == nil && hmac.Equal([]byte(again), []byte(*stored)), nil
}

// scramVerifier matches a SCRAM-SHA-256 verifier as PostgreSQL stores it.
var scramVerifier = regexp.MustCompile(`^SCRAM-SHA-256\$[0-9]+:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$`)

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// scramSHA256 returns password's SCRAM-SHA-256 verifier (RFC 5802, RFC
// 7677) in PostgreSQL's format, or password itself when it is one already.
// The password is printable ASCII (validate), which SASLprep leaves as is.
func scramSHA256(password string) (string, error) {
	if scramVerifier.MatchString(password) {
		return password, nil
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	return scramSHA256WithSalt(password, salt, scramIterations)
}

func scramSHA256WithSalt(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(server)), nil
}
