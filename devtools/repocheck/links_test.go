package repocheck

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// root is the repository root, two levels up from this package.
const root = "../.."

// markdownFiles lists the repository's Markdown files (slash paths relative
// to root), skipping .git and testdata folders (fixtures, not documents).
func markdownFiles(t *testing.T) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".md") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("found only %d Markdown files under %s", len(files), root)
	}
	return files
}

var (
	inlineLink = regexp.MustCompile(`!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)`)
	refDef     = regexp.MustCompile(`^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$`)
	codeSpan   = regexp.MustCompile("`[^`]*`")
	heading    = regexp.MustCompile(`^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$`)
	htmlAnchor = regexp.MustCompile(`<a\s+(?:name|id)="([^"]+)"`)
)

// doc is what the checker reads from one Markdown file.
type doc struct {
	links   []link
	anchors map[string]bool
}

type link struct {
	line   int
	target string
}

// parseMarkdown reads the links and heading anchors of a Markdown file, outside
// fenced code blocks and code spans.
func parseMarkdown(b []byte) doc {
	d := doc{anchors: map[string]bool{}}
	seen := map[string]int{}
	fence := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if fence != "" {
			if strings.HasPrefix(trimmed, fence) {
				fence = ""
			}
			continue
		}
		if strings.HasPrefix(trimmed, "```") || strings.HasPrefix(trimmed, "~~~") {
			fence = trimmed[:3]
			continue
		}
		if m := heading.FindStringSubmatch(line); m != nil {
			s := slug(m[1])
			if k := seen[s]; k > 0 {
				d.anchors[s+"-"+strconv.Itoa(k)] = true
			} else {
				d.anchors[s] = true
			}
			seen[s]++
		}
		for _, m := range htmlAnchor.FindAllStringSubmatch(line, -1) {
			d.anchors[m[1]] = true
		}
		line = codeSpan.ReplaceAllString(line, "")
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			d.links = append(d.links, link{n, m[1]})
		}
		if m := refDef.FindStringSubmatch(line); m != nil {
			d.links = append(d.links, link{n, m[1]})
		}
	}
	return d
}

// slug is GitHub's heading anchor: lower case, punctuation dropped, spaces
// to hyphens; links and code marks in the heading count by their text.
func slug(h string) string {
	h = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`).ReplaceAllString(h, "$1")
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// external reports whether a link target leaves the repository (checked by
// nobody here: no network in tests).
func external(target string) bool {
	for _, p := range []string{"http://", "https://", "mailto:", "ftp://"} {
		if strings.HasPrefix(strings.ToLower(target), p) {
			return true
		}
	}
	return false
}

// TestMarkdownLinks: every relative link of every Markdown file names a file
// or folder that exists, and its #anchor, if any, a heading of that file.
func TestMarkdownLinks(t *testing.T) {
	files := markdownFiles(t)
	docs := map[string]doc{}
	read := func(rel string) (doc, bool) {
		if d, ok := docs[rel]; ok {
			return d, true
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(rel)))
		if err != nil {
			return doc{}, false
		}
		docs[rel] = parseMarkdown(b)
		return docs[rel], true
	}
	checked := 0
	for _, f := range files {
		d, ok := read(f)
		if !ok {
			t.Fatalf("read %s", f)
		}
		for _, l := range d.links {
			if external(l.target) {
				continue
			}
			checked++
			path, anchor, _ := strings.Cut(l.target, "#")
			target := f
			if path != "" {
				if strings.HasPrefix(path, "/") {
					target = strings.TrimPrefix(path, "/")
				} else {
					target = filepath.ToSlash(filepath.Clean(filepath.Join(filepath.Dir(f), path)))
				}
				if strings.HasPrefix(target, "../") {
					t.Errorf("%s:%d: link %q leaves the repository", f, l.line, l.target)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(target))); err != nil {
					t.Errorf("%s:%d: link %q: %s does not exist", f, l.line, l.target, target)
					continue
				}
			}
			if anchor == "" || !strings.HasSuffix(target, ".md") {
				continue
			}
			td, _ := read(target)
			if !td.anchors[strings.ToLower(anchor)] {
				t.Errorf("%s:%d: link %q: %s has no heading #%s", f, l.line, l.target, target, anchor)
			}
		}
	}
	t.Logf("%d Markdown files, %d relative links", len(files), checked)
	if checked < 10 {
		t.Errorf("checked only %d relative links", checked)
	}
}

// TestParseMarkdown pins what the checker reads, so that it cannot pass by
// reading nothing.
func TestParseMarkdown(t *testing.T) {
	d := parseMarkdown([]byte("# Top `code` Heading!\n\n## Top code Heading!\n" +
		"See [a](a.md#x), ![img](i.png \"t\") and `[not](this.md)`.\n" +
		"```\n[not](fenced.md)\n```\n[ref]: ../r.md\n"))
	var got []string
	for _, l := range d.links {
		got = append(got, l.target)
	}
	if strings.Join(got, " ") != "a.md#x i.png ../r.md" {
		t.Errorf("links %q", got)
	}
	if !d.anchors["top-code-heading"] || !d.anchors["top-code-heading-1"] {
		t.Errorf("anchors %v", d.anchors)
	}
}
