package audit

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// WriteText writes one finding per block: place, severity, rule, message,
// and the first line of the fix, then a summary line.
func (r *Report) WriteText(w io.Writer) error {
	for _, f := range r.Findings {
		loc := fmt.Sprintf("%s:%d", f.File, f.Line)
		if f.Column > 0 {
			loc += fmt.Sprintf(":%d", f.Column)
		}
		if _, err := fmt.Fprintf(w, "%s: %s [%s] %s\n", loc, f.Severity, f.Rule, f.Message); err != nil {
			return err
		}
		if f.Accepted != "" {
			fmt.Fprintf(w, "    accepted: %s\n", f.Accepted)
		}
		fix, _, _ := strings.Cut(f.Fix, "\n")
		fmt.Fprintf(w, "    fix: %s\n", strings.TrimSuffix(fix, ":"))
	}
	counts := map[Severity]int{}
	for _, f := range r.Findings {
		counts[f.Severity]++
	}
	_, err := fmt.Fprintf(w, "%d files, %d findings: %d error, %d warning, %d note\n",
		len(r.Files), len(r.Findings), counts[SeverityError], counts[SeverityWarning], counts[SeverityNote])
	return err
}

// WriteJSON writes the report as one JSON object: files, findings (with the
// full fix) and errors.
func (r *Report) WriteJSON(w io.Writer) error {
	type jsonErr struct {
		File  string `json:"file"`
		Error string `json:"error"`
	}
	out := struct {
		Files    []ScannedFile `json:"files"`
		Findings []Finding     `json:"findings"`
		Errors   []jsonErr     `json:"errors"`
	}{Files: r.Files, Findings: r.Findings, Errors: []jsonErr{}}
	if out.Files == nil {
		out.Files = []ScannedFile{}
	}
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	for _, e := range r.Errors {
		out.Errors = append(out.Errors, jsonErr{File: e.File, Error: e.Err.Error()})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// SARIF 2.1.0 (OASIS), the subset GitHub code scanning reads:
// https://docs.oasis-open.org/sarif/sarif/v2.1.0/sarif-v2.1.0.html and
// https://docs.github.com/en/code-security/code-scanning/integrating-with-code-scanning/sarif-support-for-code-scanning

type sarifLog struct {
	Schema  string     `json:"$schema"`
	Version string     `json:"version"`
	Runs    []sarifRun `json:"runs"`
}

type sarifRun struct {
	Tool    sarifTool     `json:"tool"`
	Results []sarifResult `json:"results"`
}

type sarifTool struct {
	Driver sarifDriver `json:"driver"`
}

type sarifDriver struct {
	Name           string      `json:"name"`
	InformationURI string      `json:"informationUri"`
	Version        string      `json:"version,omitempty"`
	Rules          []sarifRule `json:"rules"`
}

type sarifMessage struct {
	Text     string `json:"text"`
	Markdown string `json:"markdown,omitempty"`
}

type sarifRule struct {
	ID                   string            `json:"id"`
	Name                 string            `json:"name"`
	ShortDescription     sarifMessage      `json:"shortDescription"`
	FullDescription      sarifMessage      `json:"fullDescription"`
	Help                 sarifMessage      `json:"help"`
	DefaultConfiguration sarifConfig       `json:"defaultConfiguration"`
	Properties           sarifRuleProperty `json:"properties"`
}

type sarifConfig struct {
	Level string `json:"level"`
}

type sarifRuleProperty struct {
	Tags             []string `json:"tags"`
	SecuritySeverity string   `json:"security-severity"`
	Precision        string   `json:"precision"`
}

type sarifResult struct {
	RuleID              string             `json:"ruleId"`
	RuleIndex           int                `json:"ruleIndex"`
	Level               string             `json:"level"`
	Message             sarifMessage       `json:"message"`
	Locations           []sarifLocation    `json:"locations"`
	PartialFingerprints map[string]string  `json:"partialFingerprints,omitempty"`
	Suppressions        []sarifSuppression `json:"suppressions,omitempty"`
}

type sarifLocation struct {
	PhysicalLocation sarifPhysical `json:"physicalLocation"`
}

type sarifPhysical struct {
	ArtifactLocation sarifArtifact `json:"artifactLocation"`
	Region           sarifRegion   `json:"region"`
}

type sarifArtifact struct {
	URI string `json:"uri"`
}

type sarifRegion struct {
	StartLine   int `json:"startLine"`
	StartColumn int `json:"startColumn,omitempty"`
}

type sarifSuppression struct {
	Kind          string `json:"kind"`
	Justification string `json:"justification,omitempty"`
}

// securitySeverity maps severities to GitHub's security-severity scores
// (critical 9+, high 7+, medium 4+, low).
var securitySeverity = map[Severity]string{SeverityError: "8.0", SeverityWarning: "5.0", SeverityNote: "2.0"}

// WriteSARIF writes a SARIF 2.1.0 log with one run; version names the tool's
// version. File URIs are the report's relative paths.
func (r *Report) WriteSARIF(w io.Writer, version string) error {
	log := sarifLog{
		Schema:  "https://json.schemastore.org/sarif-2.1.0.json",
		Version: "2.1.0",
	}
	run := sarifRun{Tool: sarifTool{Driver: sarifDriver{
		Name:           "trustfabric-audit",
		InformationURI: "https://github.com/trustfabric/trustfabric#find-your-long-lived-secrets",
		Version:        version,
	}}, Results: []sarifResult{}}
	index := map[string]int{}
	for i, rule := range rules {
		index[rule.ID] = i
		run.Tool.Driver.Rules = append(run.Tool.Driver.Rules, sarifRule{
			ID:                   rule.ID,
			Name:                 ruleName(rule.ID),
			ShortDescription:     sarifMessage{Text: rule.Title},
			FullDescription:      sarifMessage{Text: rule.Title + "."},
			Help:                 sarifMessage{Text: rule.Fix, Markdown: rule.Fix},
			DefaultConfiguration: sarifConfig{Level: rule.Severity.String()},
			Properties: sarifRuleProperty{
				Tags:             []string{"security", "ci", "supply-chain"},
				SecuritySeverity: securitySeverity[rule.Severity],
				Precision:        "high",
			},
		})
	}
	for _, f := range r.Findings {
		res := sarifResult{
			RuleID:    f.Rule,
			RuleIndex: index[f.Rule],
			Level:     f.Severity.String(),
			Message:   sarifMessage{Text: f.Message},
			Locations: []sarifLocation{{PhysicalLocation: sarifPhysical{
				ArtifactLocation: sarifArtifact{URI: f.File},
				Region:           sarifRegion{StartLine: max(f.Line, 1), StartColumn: f.Column},
			}}},
		}
		if f.Fingerprint != "" {
			res.PartialFingerprints = map[string]string{"secretSha256/v1": f.Fingerprint}
		}
		if f.Accepted != "" {
			res.Suppressions = []sarifSuppression{{Kind: "inSource", Justification: f.Accepted}}
		}
		run.Results = append(run.Results, res)
	}
	log.Runs = []sarifRun{run}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(log)
}

// ruleName turns an id into SARIF's PascalCase name.
func ruleName(id string) string {
	var b strings.Builder
	for _, part := range strings.Split(id, "-") {
		if part == "" {
			continue
		}
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
