// Package jsonlimit bounds untrusted JSON before it is decoded.
package jsonlimit

import (
	"errors"
	"fmt"
)

// ErrTooDeep is returned by CheckDepth.
var ErrTooDeep = errors.New("JSON nested too deeply")

// CheckDepth rejects JSON whose objects and arrays nest deeper than max,
// without building anything (encoding/json would recurse that deep first).
func CheckDepth(b []byte, max int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if depth++; depth > max {
				return fmt.Errorf("%w: more than %d levels", ErrTooDeep, max)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
