package attest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// Errors callers branch on with errors.Is.
var (
	// ErrInput: the options are incomplete or name something unusable (a
	// predicate file that is not JSON, a non-sha256 image digest).
	ErrInput = errors.New("invalid attest input")
	// ErrRefused: the Identity Server or the Transparency Service understood
	// the request and refused it (policy, untrusted identity, bad statement).
	ErrRefused = errors.New("refused")
	// ErrBadReceipt: the Transparency Service answered with a receipt that
	// does not prove the inclusion of the statement under its keys.
	ErrBadReceipt = errors.New("receipt does not verify")
	// ErrNotAttached: the statement was registered but could not be attached
	// to the image; see *NotAttachedError.
	ErrNotAttached = errors.New("registered but not attached")
)

// StepError reports the step that failed.
type StepError struct {
	Step string
	Err  error
}

func (e *StepError) Error() string { return e.Step + ": " + e.Err.Error() }
func (e *StepError) Unwrap() error { return e.Err }

// NotAttachedError reports a statement the Transparency Service registered
// but that could not be attached to the image. The statement and preimage
// were saved to StatementPath and PreimagePath (unless SaveErr says why not);
// the receipt can also be fetched again from the service by EntryID.
type NotAttachedError struct {
	EntryID       string
	Image         string // repository@digest
	StatementPath string
	PreimagePath  string
	Err           error // why the attach failed
	SaveErr       error // why the statement could not be saved, if it could not
}

func (e *NotAttachedError) Error() string {
	msg := fmt.Sprintf("registered as entry %s but not attached to %s: %v", e.EntryID, e.Image, e.Err)
	if e.StatementPath != "" {
		msg += fmt.Sprintf("; the transparent statement is saved in %s and its preimage in %s; retry with: trustfabric attach %s --statement %s --preimage %s",
			e.StatementPath, e.PreimagePath, e.Image, e.StatementPath, e.PreimagePath)
	} else if e.SaveErr != nil {
		msg += fmt.Sprintf("; saving the statement failed too (%v): fetch it again from the transparency service by entry id", e.SaveErr)
	}
	return msg
}

// Unwrap returns ErrNotAttached and the cause.
func (e *NotAttachedError) Unwrap() []error { return []error{ErrNotAttached, e.Err} }

// Step is one step of Run and how long it took.
type Step struct {
	Name     string
	Duration time.Duration
	Err      error // nil when the step succeeded
}

// MarshalJSON renders {"name", "durationMs", "error"}.
func (s Step) MarshalJSON() ([]byte, error) {
	v := struct {
		Name       string  `json:"name"`
		DurationMs float64 `json:"durationMs"`
		Error      string  `json:"error,omitempty"`
	}{Name: s.Name, DurationMs: float64(s.Duration.Microseconds()) / 1000}
	if s.Err != nil {
		v.Error = s.Err.Error()
	}
	return json.Marshal(v)
}

// Result is what Run did. JSON field names are part of the CLI's interface
// (the GitHub, GitLab and Tekton wrappers read entryId, logIndex, treeSize,
// referrerDigest, statementPath).
type Result struct {
	// Image is the reference as given; Repository and Digest what it
	// resolved to; Subject the statement's sub.
	Image string `json:"image,omitempty"`
	// File is the attested file (Options.File), whose statement is stored
	// at StatementPath.
	File       string `json:"file,omitempty"`
	Repository string `json:"repository,omitempty"`
	Digest     string `json:"digest,omitempty"`
	Subject    string `json:"subject,omitempty"`
	// WorkloadID is the statement's iss (the WIT's sub); Provider the CI
	// platform the identity came from.
	WorkloadID string `json:"workloadId,omitempty"`
	Provider   string `json:"provider,omitempty"`
	// PredicateType is the in-toto predicateType of the preimage ("" for
	// other payloads); ContentType its media type.
	PredicateType string `json:"predicateType,omitempty"`
	ContentType   string `json:"contentType,omitempty"`
	// EntryID is the lowercase hex entry id; LogIndex and TreeSize come from
	// the receipt's inclusion proof; TS is the receipt issuer and TSURL the
	// service registered with.
	EntryID  string `json:"entryId,omitempty"`
	LogIndex uint64 `json:"logIndex"`
	TreeSize uint64 `json:"treeSize"`
	TS       string `json:"ts,omitempty"`
	TSURL    string `json:"tsUrl"`
	// Referrer is repository@digest of the referrer manifest, ReferrerDigest
	// its digest and ReferrerMode how the registry recorded it.
	Referrer       string `json:"referrer,omitempty"`
	ReferrerDigest string `json:"referrerDigest,omitempty"`
	ReferrerMode   string `json:"referrerMode,omitempty"`
	// StatementPath and PreimagePath are the files written, if any.
	StatementPath string `json:"statementPath,omitempty"`
	PreimagePath  string `json:"preimagePath,omitempty"`
	// Steps are the steps run, in order, with their durations.
	Steps []Step `json:"steps"`

	// Statement is the transparent statement; Preimage the payload it signs.
	Statement []byte `json:"-"`
	Preimage  []byte `json:"-"`
}

// Attached reports whether every step succeeded: the statement is attached
// to the image, or stored next to the file.
func (r *Result) Attached() bool {
	return r != nil && (r.ReferrerDigest != "" || (r.File != "" && r.StatementPath != ""))
}

// WriteStep prints one step line: "  register   12.3ms".
func WriteStep(w io.Writer, s Step) {
	status := "ok"
	if s.Err != nil {
		status = "FAILED"
	}
	fmt.Fprintf(w, "%-6s %-10s %9s\n", status, s.Name, formatDuration(s.Duration))
}

// WriteText prints the facts of a result, one "name: value" line each.
func WriteText(w io.Writer, r *Result) {
	line := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "%-16s %s\n", k+":", v)
		}
	}
	line("subject", r.Subject)
	line("workload id", r.WorkloadID)
	line("predicate type", r.PredicateType)
	line("entry id", r.EntryID)
	if r.TreeSize > 0 {
		line("log index", fmt.Sprintf("%d (tree size %d)", r.LogIndex, r.TreeSize))
	}
	line("ts", r.TS)
	line("referrer", r.Referrer)
	line("referrer digest", r.ReferrerDigest)
	line("statement", r.StatementPath)
	line("preimage", r.PreimagePath)
}

func formatDuration(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	default:
		return fmt.Sprintf("%dµs", d.Microseconds())
	}
}
