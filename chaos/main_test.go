package chaos_test

import (
	"os"
	"testing"

	"github.com/wardenhq/warden/tools"
)

// TestMain lets the test binary act as the sandbox init and the Go tool
// child, for the scenarios that run the worker in process.
func TestMain(m *testing.M) {
	tools.Reexec()
	os.Exit(m.Run())
}
