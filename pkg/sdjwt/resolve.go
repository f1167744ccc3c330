package sdjwt

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// resolver processes a payload with a set of Disclosures (RFC 9901 §7.1
// steps 3-5), recording the path at which each Disclosure was found.
type resolver struct {
	ds       []*Disclosure
	byDigest map[string]int
	seen     map[string]bool
	paths    []string
	used     []bool
}

// decodeJSON decodes b into v keeping numbers exact: they come out as
// json.Number. json.Unmarshal does the work; its float64s are turned into
// json.Number when they are integers below 2^53 (exact), and when any is
// not, b is decoded again with UseNumber (slower, always exact).
func decodeJSON(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		return err
	}
	exact := true
	switch p := v.(type) {
	case *map[string]any:
		exact = numbers(*p)
	case *[]any:
		exact = numbers(*p)
	case *any:
		if f, ok := (*p).(float64); ok {
			var n json.Number
			if n, exact = safeInt(f); exact {
				*p = n
			}
		} else {
			exact = numbers(*p)
		}
	}
	if exact {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	return dec.Decode(v)
}

const maxSafeInt = 1 << 53

func safeInt(f float64) (json.Number, bool) {
	if f != math.Trunc(f) || f >= maxSafeInt || f <= -maxSafeInt {
		return "", false
	}
	return json.Number(strconv.FormatInt(int64(f), 10)), true
}

// numbers replaces the float64s in v's maps and slices by json.Number,
// reporting false (leaving v half-converted) at one it cannot convert
// exactly.
func numbers(v any) bool {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if f, ok := e.(float64); ok {
				n, ok := safeInt(f)
				if !ok {
					return false
				}
				x[k] = n
			} else if !numbers(e) {
				return false
			}
		}
	case []any:
		for i, e := range x {
			if f, ok := e.(float64); ok {
				n, ok := safeInt(f)
				if !ok {
					return false
				}
				x[i] = n
			} else if !numbers(e) {
				return false
			}
		}
	}
	return true
}

// resolve returns the processed payload (no "_sd", "..." or "_sd_alg") and
// each Disclosure's claim path ("address.street", "nationalities.1").
func resolve(payload map[string]any, ds []*Disclosure) (map[string]any, []string, error) {
	r := &resolver{ds: ds, byDigest: make(map[string]int, len(ds)), seen: map[string]bool{}, paths: make([]string, len(ds)), used: make([]bool, len(ds))}
	for i, d := range ds {
		dg := d.Digest()
		if _, dup := r.byDigest[dg]; dup {
			return nil, nil, fmt.Errorf("%w: disclosure %d is presented twice", ErrDisclosure, i+1)
		}
		r.byDigest[dg] = i
	}
	out, err := r.object(payload, "", 0, true)
	if err != nil {
		return nil, nil, err
	}
	for i, d := range ds {
		if !r.used[i] {
			what := "an array element"
			if !d.IsElement {
				what = fmt.Sprintf("claim %q", d.Name)
			}
			return nil, nil, fmt.Errorf("%w: disclosure %d (%s) is not referenced by the signed payload: tampered, or from another credential", ErrDisclosure, i+1, what)
		}
	}
	return out, r.paths, nil
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (r *resolver) claim(dg string) (int, bool, error) {
	if r.seen[dg] {
		return 0, false, fmt.Errorf("%w: digest %s is listed more than once", ErrDisclosure, dg)
	}
	r.seen[dg] = true
	i, ok := r.byDigest[dg]
	return i, ok, nil
}

func (r *resolver) disclosed(i int, path string, depth int) (any, error) {
	r.used[i] = true
	r.paths[i] = path
	return r.value(r.ds[i].value, path, depth+1, false)
}

// value processes v; owned reports that v was decoded for this resolve
// (the payload) and may be modified in place, rather than shared (a
// Disclosure's value, which is copied).
func (r *resolver) value(v any, path string, depth int, owned bool) (any, error) {
	if depth > 2*MaxDepth {
		return nil, fmt.Errorf("%w: nested deeper than %d levels", ErrMalformed, 2*MaxDepth)
	}
	switch x := v.(type) {
	case map[string]any:
		return r.object(x, path, depth+1, owned)
	case []any:
		out := make([]any, 0, len(x))
		for idx, e := range x {
			p := join(path, strconv.Itoa(idx))
			if m, ok := e.(map[string]any); ok && len(m) == 1 {
				if raw, ok := m["..."]; ok {
					dg, ok := raw.(string)
					if !ok {
						return nil, fmt.Errorf("%w: %s: \"...\" is not a digest string", ErrMalformed, p)
					}
					i, found, err := r.claim(dg)
					if err != nil {
						return nil, err
					}
					if !found {
						continue // not disclosed: removed (§7.1 step 3.d)
					}
					if !r.ds[i].IsElement {
						return nil, fmt.Errorf("%w: disclosure %d of claim %q is referenced as an array element", ErrDisclosure, i+1, r.ds[i].Name)
					}
					pv, err := r.disclosed(i, p, depth)
					if err != nil {
						return nil, err
					}
					out = append(out, pv)
					continue
				}
			}
			pv, err := r.value(e, p, depth+1, owned)
			if err != nil {
				return nil, err
			}
			out = append(out, pv)
		}
		return out, nil
	default:
		return v, nil
	}
}

func (r *resolver) object(m map[string]any, path string, depth int, owned bool) (map[string]any, error) {
	// A Disclosure's value is shared and never modified: its objects are
	// copied. The payload's are modified in place.
	out := m
	if !owned {
		out = make(map[string]any, len(m))
	}
	if _, ok := m["..."]; ok {
		return nil, fmt.Errorf("%w: %q is not allowed as a claim name in an object", ErrCollision, "...")
	}
	sdRaw, hasSD := m["_sd"]
	for k, v := range m {
		if k == "_sd" || (k == "_sd_alg" && path == "") {
			continue
		}
		pv, err := r.value(v, join(path, k), depth, owned)
		if err != nil {
			return nil, err
		}
		out[k] = pv
	}
	if owned {
		delete(out, "_sd")
		if path == "" {
			delete(out, "_sd_alg")
		}
	}
	if !hasSD {
		return out, nil
	}
	list, ok := sdRaw.([]any)
	if !ok {
		return nil, fmt.Errorf("%w: %s: _sd is not an array", ErrMalformed, join(path, "_sd"))
	}
	for _, e := range list {
		dg, ok := e.(string)
		if !ok {
			return nil, fmt.Errorf("%w: %s: _sd holds a non-string", ErrMalformed, join(path, "_sd"))
		}
		i, found, err := r.claim(dg)
		if err != nil {
			return nil, err
		}
		if !found {
			continue
		}
		d := r.ds[i]
		if d.IsElement {
			return nil, fmt.Errorf("%w: an array-element disclosure (%d) is referenced from _sd", ErrDisclosure, i+1)
		}
		if _, exists := out[d.Name]; exists {
			return nil, fmt.Errorf("%w: disclosed claim %q is already in the payload", ErrCollision, join(path, d.Name))
		}
		pv, err := r.disclosed(i, join(path, d.Name), depth)
		if err != nil {
			return nil, err
		}
		out[d.Name] = pv
	}
	return out, nil
}
