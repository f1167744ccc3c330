package archtest

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/trustfabric/trustfabric/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func goList(t *testing.T) map[string]pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "../../...")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	pkgs := map[string]pkg{}
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, module)] = p
	}
	return pkgs
}

var floorLine = regexp.MustCompile("^- `([a-z0-9/_.-]+)` \\(floor ([0-9]+)\\):")

func floors(t *testing.T) map[string]int {
	t.Helper()
	f, err := os.Open("../../docs/design/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		m := floorLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		if _, dup := out[m[1]]; dup {
			t.Errorf("architecture.md lists %s twice", m[1])
		}
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	return out
}

func excluded(p string) bool {
	return strings.HasPrefix(p, "devtools") || strings.HasPrefix(p, "internal/citest") || p == "internal/archtest"
}

// TestArchitecturePage: every package is on the page once, every import goes
// to a lower floor or to the package's own parent, and nothing under pkg/
// imports a development program or test harness.
func TestArchitecturePage(t *testing.T) {
	pkgs, fl := goList(t), floors(t)
	for p := range pkgs {
		if excluded(p) {
			continue
		}
		if _, ok := fl[p]; !ok {
			t.Errorf("package %s is not on docs/design/architecture.md", p)
		}
	}
	for p := range fl {
		if _, ok := pkgs[p]; !ok {
			t.Errorf("architecture.md lists %s, which does not exist", p)
		}
	}
	for p, info := range pkgs {
		if excluded(p) {
			continue
		}
		for _, imp := range info.Imports {
			dep, ok := strings.CutPrefix(imp, module)
			if !ok {
				continue
			}
			if excluded(dep) && strings.HasPrefix(p, "pkg/") {
				t.Errorf("%s imports the development-only %s", p, dep)
				continue
			}
			parent := strings.HasPrefix(p, dep+"/")
			if fl[dep] >= fl[p] && !parent {
				t.Errorf("%s (floor %d) imports %s (floor %d): imports must go down a floor", p, fl[p], dep, fl[dep])
			}
		}
	}
}

// TestDependencyRules: the rules of architecture.md's last section.
func TestDependencyRules(t *testing.T) {
	pkgs := goList(t)
	has := func(p, dep string) bool {
		for _, d := range pkgs[p].Deps {
			if d == dep || strings.HasPrefix(d, dep+"/") {
				return true
			}
		}
		return false
	}
	for _, c := range []struct {
		pkg, dep string
	}{
		{"pkg/wimse", module + "pkg/scitt"},
		{"pkg/wimse", module + "pkg/transparency"},
		{"pkg/wimse", module + "pkg/witstatement"},
		{"pkg/identity", module + "pkg/ci"},
		{"pkg/identity", module + "pkg/workload"},
		{"pkg/workload", "github.com/coreos/go-oidc"},
		{"pkg/scitt", module + "pkg/ci"},
		{"pkg/scitt", "net/http/httptest"},
		{"pkg/policy", "net/http/httptest"},
		{"pkg/policy", module + "pkg/ci/github"},
		{"pkg/policy", module + "pkg/ci/gitlab"},
		{"pkg/policy", module + "pkg/ci/tekton"},
		{"pkg/policy", module + "pkg/ci/spiffe"},
		{"pkg/policy", "github.com/sethvargo/go-githubactions"},
		{"pkg/policy", "github.com/rhysd/actionlint"},
	} {
		if has(c.pkg, c.dep) {
			t.Errorf("%s depends on %s", c.pkg, c.dep)
		}
	}
	for _, p := range []string{"pkg/scitt", "pkg/policy"} {
		for _, dep := range []string{module + "pkg/transparency", module + "pkg/identity", module + "pkg/server",
			module + "pkg/oci/ocitest", "github.com/transparency-dev/tessera", "github.com/coreos/go-oidc",
			"github.com/olareg/olareg", "github.com/distribution/distribution"} {
			if has(p, dep) {
				t.Errorf("%s depends on %s", p, dep)
			}
		}
	}
}
