package doclinks

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRepositoryHasNoDeadReferences: every file the README, docs/*.md, the
// Makefile and Go comments name exists, and none points outside the
// repository.
func TestRepositoryHasNoDeadReferences(t *testing.T) {
	refs, err := Dead(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range refs {
		t.Errorf("dead reference: %s", r)
	}
}

// TestDeadReferencesFound: in a small tree with one live and several dead
// references of each kind, exactly the dead ones are reported.
func TestDeadReferencesFound(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"README.md": "See [the API](docs/API.md), [gone](docs/gone.md#x), [web](https://example.org/a.md)\n" +
			"and docs/cluster.md, DESIGN.md, the route /openapi.yaml, localhost:8080/x.yaml, examples like seed.json.\n",
		"docs/API.md":     "Back to [the README](../README.md); the spec in ../../spec/API.md, [its design](../../spec/DESIGN.md).\n",
		"docs/cluster.md": "ok\n",
		"pkg/a.go": "// Package pkg follows docs/API.md and engine/record.go.\npackage pkg\n\n" +
			"var s = \"docs/missing.md in a string is not a comment\"\n",
		"Makefile": "test: # see docs/nothing.md\n\techo docs/notacomment.md\n",
	}
	for name, text := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	refs, err := Dead(root)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.File+":"+r.Target)
		if strings.HasPrefix(r.Target, "../") && r.Why != "points outside the repository" {
			t.Errorf("%s: want it reported as pointing outside the repository", r)
		}
	}
	want := []string{
		"Makefile:docs/nothing.md",
		"README.md:docs/gone.md",
		"README.md:DESIGN.md",
		"docs/API.md:../../spec/API.md",
		"docs/API.md:../../spec/DESIGN.md",
		"pkg/a.go:engine/record.go",
	}
	if strings.Join(sorted(got), "\n") != strings.Join(sorted(want), "\n") {
		t.Errorf("dead references:\n  %s\nwant:\n  %s", strings.Join(sorted(got), "\n  "), strings.Join(sorted(want), "\n  "))
	}
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}
