package tools

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// ArgsError reports why arguments do not fit a tool's schema, one problem
// per failing argument, worded for the model to correct its call.
type ArgsError struct {
	Tool     string
	Problems []string
}

func (e *ArgsError) Error() string {
	return fmt.Sprintf("%s for tool %s: %s", ErrInvalidArgs, e.Tool, strings.Join(e.Problems, "; "))
}

// Unwrap makes errors.Is(err, ErrInvalidArgs) hold.
func (e *ArgsError) Unwrap() error { return ErrInvalidArgs }

// Validate checks model-produced args against the named tool's schema. An
// unknown tool is an error wrapping ErrUnknownTool; arguments that do not fit
// are an *ArgsError (wrapping ErrInvalidArgs) naming each failing argument
// and what was expected, such as
// `argument "amount_cents": expected integer, got string`.
func (r *Registry) Validate(name string, args json.RawMessage) error {
	t, err := r.lookup(name)
	if err != nil {
		return err
	}
	return t.validate(args)
}

func (t *tool) validate(args json.RawMessage) error {
	fail := func(problems ...string) error {
		return &ArgsError{Tool: t.spec.Name, Problems: problems}
	}
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(args))
	if err != nil {
		return fail(fmt.Sprintf("arguments are not valid JSON: %v", err))
	}
	if _, ok := doc.(map[string]any); !ok {
		return fail(fmt.Sprintf("arguments must be a JSON object, got %s", jsonType(doc)))
	}
	err = t.schema.Validate(doc)
	if err == nil {
		if err := t.decode(args); err != nil {
			return fail(describeDecodeError(err))
		}
		return nil
	}
	var verr *jsonschema.ValidationError
	if !errors.As(err, &verr) {
		return fail(err.Error())
	}
	var problems []string
	for _, leaf := range leaves(verr) {
		problems = append(problems, t.describe(leaf)...)
	}
	slices.Sort(problems)
	return fail(slices.Compact(problems)...)
}

// leaves returns the innermost errors: the ones that say what is wrong.
func leaves(e *jsonschema.ValidationError) []*jsonschema.ValidationError {
	if len(e.Causes) == 0 {
		return []*jsonschema.ValidationError{e}
	}
	var out []*jsonschema.ValidationError
	for _, c := range e.Causes {
		out = append(out, leaves(c)...)
	}
	return out
}

// describe words one validation failure.
func (t *tool) describe(e *jsonschema.ValidationError) []string {
	loc := e.InstanceLocation
	at := fmt.Sprintf("argument %q", argPath(loc))
	switch k := e.ErrorKind.(type) {
	case *kind.Required:
		var out []string
		for _, m := range k.Missing {
			out = append(out, fmt.Sprintf("missing required argument %q", argPath(append(slices.Clone(loc), m))))
		}
		return out
	case *kind.AdditionalProperties:
		var out []string
		for _, p := range k.Properties {
			msg := fmt.Sprintf("unknown argument %q", argPath(append(slices.Clone(loc), p)))
			if len(loc) == 0 {
				msg += fmt.Sprintf(" (allowed: %s)", strings.Join(t.props, ", "))
			}
			out = append(out, msg)
		}
		return out
	case *kind.Type:
		if len(loc) == 0 {
			return []string{fmt.Sprintf("arguments must be a JSON object, got %s", k.Got)}
		}
		return []string{fmt.Sprintf("%s: expected %s, got %s", at, strings.Join(k.Want, " or "), k.Got)}
	case *kind.Pattern:
		return []string{fmt.Sprintf("%s: %q does not match the pattern %s", at, k.Got, k.Want)}
	case *kind.Minimum:
		return []string{fmt.Sprintf("%s: must be at least %s, got %s", at, ratString(k.Want), ratString(k.Got))}
	case *kind.Maximum:
		return []string{fmt.Sprintf("%s: must be at most %s, got %s", at, ratString(k.Want), ratString(k.Got))}
	case *kind.ExclusiveMinimum:
		return []string{fmt.Sprintf("%s: must be greater than %s, got %s", at, ratString(k.Want), ratString(k.Got))}
	case *kind.ExclusiveMaximum:
		return []string{fmt.Sprintf("%s: must be less than %s, got %s", at, ratString(k.Want), ratString(k.Got))}
	case *kind.MinLength:
		return []string{fmt.Sprintf("%s: must be at least %d characters long, got %d", at, k.Want, k.Got)}
	case *kind.MaxLength:
		return []string{fmt.Sprintf("%s: must be at most %d characters long, got %d", at, k.Want, k.Got)}
	case *kind.MinItems:
		return []string{fmt.Sprintf("%s: must have at least %d item(s), got %d", at, k.Want, k.Got)}
	case *kind.MaxItems:
		return []string{fmt.Sprintf("%s: must have at most %d item(s), got %d", at, k.Want, k.Got)}
	case *kind.Enum:
		want := make([]string, len(k.Want))
		for i, w := range k.Want {
			b, _ := json.Marshal(w)
			want[i] = string(b)
		}
		return []string{fmt.Sprintf("%s: must be one of %s", at, strings.Join(want, ", "))}
	case *kind.Const:
		b, _ := json.Marshal(k.Want)
		return []string{fmt.Sprintf("%s: must be %s", at, b)}
	case *kind.Format:
		return []string{fmt.Sprintf("%s: is not a valid %s", at, k.Want)}
	case *kind.FalseSchema:
		return []string{fmt.Sprintf("%s: is not allowed", at)}
	default:
		return []string{fmt.Sprintf("%s: fails the schema's %q rule", at, strings.Join(e.ErrorKind.KeywordPath(), "/"))}
	}
}

// describeDecodeError words a failure to decode schema-valid arguments
// into the tool's Go type.
func describeDecodeError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		switch te.Type.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			return fmt.Sprintf("argument %q: expected an integer written without fraction or exponent, within range; got %s", te.Field, te.Value)
		}
		return fmt.Sprintf("argument %q: cannot use %s as %s", te.Field, te.Value, te.Type)
	}
	return err.Error()
}

// argPath renders an instance location as argv[0] or a.b.
func argPath(loc []string) string {
	var b strings.Builder
	for _, tok := range loc {
		if _, err := strconv.Atoi(tok); err == nil && b.Len() > 0 {
			b.WriteString("[" + tok + "]")
			continue
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

func ratString(r *big.Rat) string {
	if r == nil {
		return "?"
	}
	if r.IsInt() {
		return r.Num().String()
	}
	return r.FloatString(6)
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "boolean"
	case json.Number:
		return "number"
	case string:
		return "string"
	case []any:
		return "array"
	default:
		return "object"
	}
}
