package main

import (
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	oldV, oldC, oldD := version, commit, date
	t.Cleanup(func() { version, commit, date = oldV, oldC, oldD })
	version, commit, date = "v1.2.3", "0123456789abcdef0123456789abcdef01234567", "2026-12-01T10:00:00Z"

	out := mustRun(t, "version")
	for _, want := range []string{"trustfabric v1.2.3\n", "commit:   0123456789abcdef", "built:    2026-12-01T10:00:00Z", "go:       " + runtime.Version(), runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(out, want) {
			t.Errorf("version lacks %q:\n%s", want, out)
		}
	}
	var bi BuildInfo
	if err := json.Unmarshal([]byte(mustRun(t, "version", "--output", "json")), &bi); err != nil {
		t.Fatal(err)
	}
	if bi.Version != "v1.2.3" || bi.Commit != commit || bi.Date != date || bi.GoVersion != runtime.Version() {
		t.Errorf("version --output json = %+v", bi)
	}
	if got := mustRun(t, "--version"); got != "trustfabric v1.2.3\n" {
		t.Errorf("--version = %q", got)
	}
	if code, _, _ := tf(t, "version", "--output", "yaml"); code != exitUsage {
		t.Errorf("--output yaml: exit %d, want %d", code, exitUsage)
	}
}
