package warden_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestVocabularyLinksNoTemporal proves the dependency direction of the
// vocabulary: the root package and the leaf packages built on it (redact,
// audit, policies) link no Temporal SDK or API package and no gRPC. The
// Temporal-backed Client lives in package client; a Temporal import creeping
// back into the root (or into anything these link) fails here, naming the
// package that brings it in.
func TestVocabularyLinksNoTemporal(t *testing.T) {
	t.Parallel()
	forbidden := []string{"go.temporal.io", "google.golang.org/grpc"}
	isForbidden := func(pkg string) bool {
		return slices.ContainsFunc(forbidden, func(f string) bool { return pkg == f || strings.HasPrefix(pkg, f+"/") })
	}
	for _, target := range []string{".", "./redact", "./audit", "./policies", "./internal/govern"} {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \",\"}}", target).CombinedOutput()
			require.NoError(t, err, string(out))
			var linked int
			var bad []string
			for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
				pkg, imports, _ := strings.Cut(line, " ")
				linked++
				if isForbidden(pkg) {
					continue
				}
				for _, imp := range strings.Split(imports, ",") {
					if isForbidden(imp) {
						bad = append(bad, pkg+" imports "+imp)
					}
				}
			}
			if len(bad) > 0 {
				t.Fatalf("%s links Temporal or gRPC:\n%s", target, strings.Join(bad, "\n"))
			}
			require.Greater(t, linked, 10, "go list returned too little to prove anything")
		})
	}
}
