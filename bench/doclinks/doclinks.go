// Package doclinks finds references to files that do not exist: relative
// links in the repository's Markdown (README.md, docs/*.md) and paths
// named in those pages, in Go comments and in the Makefile's comments
// (docs/API.md, engine/record.go, cluster.md ...). A relative reference
// that leads out of the repository is always an error, whether or not
// something is there on this machine: a clone has only the repository,
// which documents itself. Its test runs on the repository in `make test`
// and `make lint`.
package doclinks

import (
	"bufio"
	"fmt"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// mention is a path-like word ending in an extension the repository keeps
// documents, code and configuration in. Paths that start with "/" or
// follow a ":" are URL paths (routes such as /openapi.yaml,
// localhost:8080/openapi.yaml), not files, and are skipped.
var mention = regexp.MustCompile(`(?:^|[^A-Za-z0-9_./:@<>{}*-])((?:\.\./)*(?:[A-Za-z0-9_-][A-Za-z0-9_.-]*/)*[A-Za-z0-9_-][A-Za-z0-9_.-]*\.(?:md|go|yaml|yml|json|sh))\b`)

// mdLink is the target of a Markdown link or image.
var mdLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)

// Ref is one dead reference.
type Ref struct {
	File   string // relative to the root
	Line   int
	Target string
	Why    string
}

func (r Ref) String() string { return fmt.Sprintf("%s:%d: %s: %s", r.File, r.Line, r.Target, r.Why) }

// Dead lists the dead references under root (a repository checkout).
func Dead(root string) ([]Ref, error) {
	var refs []Ref
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			// Generated output, data and version control are not ours to document.
			if rel != "." && (strings.HasPrefix(d.Name(), ".") || rel == "bin" || rel == "data" || d.Name() == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		var lines []numbered
		switch {
		case strings.HasSuffix(path, ".go"):
			lines, err = goComments(path)
		case rel == "README.md" || (filepath.Dir(rel) == "docs" && strings.HasSuffix(rel, ".md")):
			lines, err = fileLines(path, "")
		case rel == "Makefile":
			lines, err = fileLines(path, "#")
		default:
			return nil
		}
		if err != nil {
			return err
		}
		isMarkdown := strings.HasSuffix(path, ".md")
		for _, l := range lines {
			refs = append(refs, check(root, rel, l, isMarkdown)...)
		}
		return nil
	})
	return refs, err
}

type numbered struct {
	n    int
	text string
}

// check finds the dead references in one line of file rel.
func check(root, rel string, l numbered, isMarkdown bool) []Ref {
	var refs []Ref
	dir := filepath.Dir(rel)
	seen := map[string]bool{}
	if isMarkdown {
		for _, m := range mdLink.FindAllStringSubmatch(l.text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "#") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			target, _, _ = strings.Cut(target, "#")
			seen[target] = true
			if p := filepath.Join(dir, target); escapes(p) {
				refs = append(refs, Ref{rel, l.n, target, "points outside the repository"})
			} else if !exists(root, p) {
				refs = append(refs, Ref{rel, l.n, target, "the link's target does not exist"})
			}
		}
	}
	for _, m := range mention.FindAllStringSubmatch(l.text, -1) {
		target := m[1]
		if seen[target] {
			continue
		}
		if !strings.Contains(target, "/") && !strings.HasSuffix(target, ".md") {
			continue // a bare file name (seed.json, x.go) is usually an example, not a reference
		}
		candidates := []string{filepath.Join(dir, target), target}
		if !strings.Contains(target, "/") {
			candidates = append(candidates, filepath.Join("docs", target))
		}
		found := false
		for _, c := range candidates {
			if exists(root, c) {
				found = true
				break
			}
		}
		switch {
		case found:
		case escapes(candidates[0]):
			refs = append(refs, Ref{rel, l.n, target, "points outside the repository"})
		default:
			refs = append(refs, Ref{rel, l.n, target, "no such file in the repository"})
		}
	}
	return refs
}

// escapes reports whether rel, a path relative to the root, leads out of it.
func escapes(rel string) bool {
	clean := filepath.Clean(rel)
	return clean == ".." || strings.HasPrefix(clean, "../") || filepath.IsAbs(clean)
}

// exists reports whether rel names a file or directory inside root.
func exists(root, rel string) bool {
	if escapes(rel) {
		return false
	}
	_, err := os.Stat(filepath.Join(root, filepath.Clean(rel)))
	return err == nil
}

// fileLines returns a file's lines; with commentPrefix, only the comment
// part of each line.
func fileLines(path, commentPrefix string) ([]numbered, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []numbered
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		text := sc.Text()
		if commentPrefix != "" {
			i := strings.Index(text, commentPrefix)
			if i < 0 {
				continue
			}
			text = text[i:]
		}
		out = append(out, numbered{n, text})
	}
	return out, sc.Err()
}

// goComments returns the lines of a Go file's comments.
func goComments(path string) ([]numbered, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []numbered
	for _, g := range f.Comments {
		for _, c := range g.List {
			line := fset.Position(c.Pos()).Line
			for i, text := range strings.Split(c.Text, "\n") {
				out = append(out, numbered{line + i, text})
			}
		}
	}
	return out, nil
}
