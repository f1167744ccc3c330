package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// sarifSchemaID is the id of the OASIS SARIF 2.1.0 schema (errata 01).
const sarifSchemaID = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"

func sarifSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	f, err := os.Open("testdata/sarif/sarif-schema-2.1.0.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc, err := jsonschema.UnmarshalJSON(f)
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource(sarifSchemaID, doc); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(sarifSchemaID)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validateSARIF(s *jsonschema.Schema, b []byte) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return err
	}
	return s.Validate(inst)
}

// TestSARIFSchema validates the corpus report against the SARIF 2.1.0
// schema, then checks what GitHub code scanning needs beyond the schema.
func TestSARIFSchema(t *testing.T) {
	schema := sarifSchema(t)
	r := scanCorpus(t)
	// One accepted finding, so that suppressions are validated too.
	r.Findings[0].Accepted, r.Findings[0].Severity = "reviewed", SeverityNote
	var buf bytes.Buffer
	if err := r.WriteSARIF(&buf, "v1.2.3"); err != nil {
		t.Fatal(err)
	}
	if err := validateSARIF(schema, buf.Bytes()); err != nil {
		t.Fatalf("SARIF does not validate: %v", err)
	}
	var log sarifLog
	if err := json.Unmarshal(buf.Bytes(), &log); err != nil {
		t.Fatal(err)
	}
	if log.Version != "2.1.0" || len(log.Runs) != 1 {
		t.Fatalf("version %q, %d runs", log.Version, len(log.Runs))
	}
	run := log.Runs[0]
	if len(run.Results) != len(r.Findings) {
		t.Errorf("%d results for %d findings", len(run.Results), len(r.Findings))
	}
	for _, rule := range run.Tool.Driver.Rules {
		if rule.Help.Text == "" || rule.ShortDescription.Text == "" {
			t.Errorf("rule %s lacks help or description", rule.ID)
		}
		if v, err := strconv.ParseFloat(rule.Properties.SecuritySeverity, 64); err != nil || v <= 0 || v > 10 {
			t.Errorf("rule %s: security-severity %q is not a score in (0, 10]", rule.ID, rule.Properties.SecuritySeverity)
		}
	}
	for _, res := range run.Results {
		if res.RuleIndex < 0 || res.RuleIndex >= len(run.Tool.Driver.Rules) || run.Tool.Driver.Rules[res.RuleIndex].ID != res.RuleID {
			t.Errorf("result %s: ruleIndex %d does not point at its rule", res.RuleID, res.RuleIndex)
		}
		loc := res.Locations[0].PhysicalLocation
		if loc.Region.StartLine < 1 || strings.HasPrefix(loc.ArtifactLocation.URI, "/") || strings.Contains(loc.ArtifactLocation.URI, `\`) {
			t.Errorf("result %s: location %+v is not a relative URI with a line", res.RuleID, loc)
		}
	}
	if len(run.Results[0].Suppressions) != 1 {
		t.Errorf("accepted finding has no suppression: %+v", run.Results[0])
	}
}

// TestSARIFSchemaRejects shows the validation is not vacuous.
func TestSARIFSchemaRejects(t *testing.T) {
	schema := sarifSchema(t)
	r := scanCorpus(t)
	var buf bytes.Buffer
	if err := r.WriteSARIF(&buf, "v1"); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string][]byte{
		"level":     bytes.Replace(buf.Bytes(), []byte(`"level": "error"`), []byte(`"level": "critical"`), 1),
		"startLine": bytes.Replace(buf.Bytes(), []byte(`"startLine": `), []byte(`"startLine": -`), 1),
		"version":   bytes.Replace(buf.Bytes(), []byte(`"version": "2.1.0"`), []byte(`"version": "2.0.0"`), 1),
	} {
		if bytes.Equal(bad, buf.Bytes()) {
			t.Fatalf("%s: the tampering changed nothing", name)
		}
		if err := validateSARIF(schema, bad); err == nil {
			t.Errorf("%s: tampered SARIF validates", name)
		}
	}
}
