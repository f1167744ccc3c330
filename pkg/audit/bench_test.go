package audit

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rhysd/actionlint"
)

// BenchmarkAudit1000 audits 1,000 workflow files (the corpus workflows,
// copied round-robin) and lints the same files with actionlint alone (its
// library, every rule but the external shellcheck and pyflakes), and reports
// the ratio of the two times: x-actionlint. The budget is 2.
//
//	go test -run '^$' -bench Audit1000 -benchtime 5x ./pkg/audit
func BenchmarkAudit1000(b *testing.B) {
	src, err := filepath.Glob(filepath.Join(corpus, "github", ".github", "workflows", "*.yml"))
	if err != nil || len(src) == 0 {
		b.Fatalf("no corpus workflows (%v)", err)
	}
	dir := b.TempDir()
	wf := filepath.Join(dir, ".github", "workflows")
	if err := os.MkdirAll(wf, 0o755); err != nil {
		b.Fatal(err)
	}
	var files []string
	for i := range 1000 {
		data, err := os.ReadFile(src[i%len(src)])
		if err != nil {
			b.Fatal(err)
		}
		p := filepath.Join(wf, fmt.Sprintf("wf-%04d.yml", i))
		if err := os.WriteFile(p, data, 0o644); err != nil {
			b.Fatal(err)
		}
		files = append(files, p)
	}
	linter, err := actionlint.NewLinter(io.Discard, &actionlint.LinterOptions{LogWriter: io.Discard})
	if err != nil {
		b.Fatal(err)
	}
	proj, err := actionlint.NewProject(dir)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var auditTime, lintTime time.Duration
	var findings int
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		r, err := Scan(ctx, []string{dir})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := linter.LintFiles(files, proj); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		auditTime += t1.Sub(t0)
		lintTime += t2.Sub(t1)
		findings = len(r.Findings)
	}
	b.ReportMetric(float64(auditTime.Milliseconds())/float64(b.N), "audit-ms/op")
	b.ReportMetric(float64(lintTime.Milliseconds())/float64(b.N), "actionlint-ms/op")
	b.ReportMetric(float64(auditTime)/float64(lintTime), "x-actionlint")
	b.ReportMetric(float64(findings), "findings")
}
