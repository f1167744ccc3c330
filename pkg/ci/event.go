package ci

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// maxEventSize bounds the GitHub event payload we read (the runner writes at most a few
// hundred KiB; webhook payloads are capped at 25 MB, but inputs are tiny).
const maxEventSize = 4 << 20

// readEventInputs reads the "inputs" object of the GitHub event payload at path. Values
// are kept as their JSON text when they are not strings (booleans, numbers).
func readEventInputs(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("%s: read GITHUB_EVENT_PATH: %w", GitHub, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxEventSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: read GITHUB_EVENT_PATH: %w", GitHub, err)
	}
	if len(b) > maxEventSize {
		return nil, fmt.Errorf("%s: GITHUB_EVENT_PATH is larger than %d bytes", GitHub, maxEventSize)
	}
	var ev struct {
		Inputs map[string]json.RawMessage `json:"inputs"`
	}
	if err := json.Unmarshal(b, &ev); err != nil {
		return nil, fmt.Errorf("%s: GITHUB_EVENT_PATH is not JSON: %w", GitHub, err)
	}
	if len(ev.Inputs) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(ev.Inputs))
	for k, raw := range ev.Inputs {
		var s string
		if json.Unmarshal(raw, &s) == nil {
			out[k] = s
		} else {
			out[k] = string(raw)
		}
	}
	return out, nil
}
