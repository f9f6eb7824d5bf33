package tools_test

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/wardenhq/warden"
	"github.com/wardenhq/warden/tools"
)

// countArgs are the arguments of the example's count_lines tool.
type countArgs struct {
	Path  string `json:"path" jsonschema:"minLength=1" jsonschema_description:"File relative to the workspace."`
	Limit int    `json:"limit,omitempty" jsonschema:"minimum=1"`
}

// A process tool maps typed arguments to a program's argv; the registry
// generates the schema the model sees and validates what the model sends.
func ExampleRegister() {
	r, err := tools.NewRegistry(tools.Options{})
	if err != nil {
		panic(err)
	}
	err = tools.Register(r, tools.Def[countArgs]{
		Name:        "count_lines",
		Description: "Count the lines of a file in the workspace.",
		Risk:        warden.RiskLow,
		Idempotent:  true,
		Effects:     []string{"read"},
		Argv: func(a countArgs) ([]string, error) {
			if a.Limit > 0 {
				return []string{"sh", "-c", "head -n " + strconv.Itoa(a.Limit) + ` -- "$1" | wc -l`, "count_lines", a.Path}, nil
			}
			return []string{"wc", "-l", "--", a.Path}, nil
		},
	})
	if err != nil {
		panic(err)
	}
	spec, _ := r.Spec("count_lines")
	fmt.Println(string(spec.Schema))
	fmt.Println(r.Validate("count_lines", json.RawMessage(`{"path":"a.txt","limit":"10"}`)))
	// Output:
	// {"properties":{"path":{"type":"string","minLength":1,"description":"File relative to the workspace."},"limit":{"type":"integer","minimum":1}},"additionalProperties":false,"type":"object","required":["path"]}
	// invalid arguments for tool count_lines: argument "limit": expected integer, got string
}
