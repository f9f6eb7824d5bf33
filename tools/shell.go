package tools

import "slices"

// ShellArgs are the arguments of the shell tool.
type ShellArgs struct {
	Argv []string `json:"argv" jsonschema:"minItems=1" jsonschema_description:"The program and its arguments, e.g. [\"ls\", \"-la\"] or [\"sh\", \"-c\", \"grep -r TODO . | head\"]."`
}

// shellArgv runs argv as is: no shell interpretation unless the model asks
// for sh -c itself.
func shellArgv(args ShellArgs) ([]string, error) {
	return slices.Clone(args.Argv), nil
}
