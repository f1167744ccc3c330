package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"go.yaml.in/yaml/v3"
)

// Helpers over go.yaml.in/yaml/v3 nodes, which keep line numbers.

// maxYAMLNodes bounds the nodes of one file (alias expansion included).
const maxYAMLNodes = 200000

// decodeAll parses every document of a YAML stream.
func decodeAll(data []byte) ([]*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []*yaml.Node
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, fmt.Errorf("%w: %w", ErrParse, err)
		}
		if countNodes(&n, 0) > maxYAMLNodes {
			return docs, fmt.Errorf("%w: more than %d YAML nodes", ErrParse, maxYAMLNodes)
		}
		root := &n
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		docs = append(docs, root)
	}
}

func countNodes(n *yaml.Node, depth int) int {
	if n == nil || depth > 200 {
		return maxYAMLNodes + 1
	}
	c := 1
	for _, k := range n.Content {
		c += countNodes(k, depth+1)
		if c > maxYAMLNodes {
			return c
		}
	}
	return c
}

// deref follows an alias.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 10; i++ {
		n = n.Alias
	}
	return n
}

// get returns the value of key in a mapping, or nil.
func get(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return deref(n.Content[i+1])
		}
	}
	return nil
}

// pairs calls f for each key and value of a mapping.
func pairs(n *yaml.Node, f func(k, v *yaml.Node)) {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		f(n.Content[i], deref(n.Content[i+1]))
	}
}

// items returns the elements of a sequence (nil otherwise).
func items(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.SequenceNode {
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = deref(c)
	}
	return out
}

func scalar(n *yaml.Node) (string, bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", false
	}
	return n.Value, true
}

func nodeText(n *yaml.Node) text {
	return text{s: n.Value, line: n.Line, col: n.Column, block: n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0}
}

// scripts flattens a script given as a string or a (nested) list of strings.
func scripts(n *yaml.Node) []text {
	n = deref(n)
	if n == nil {
		return nil
	}
	if s, ok := scalar(n); ok {
		_ = s
		return []text{nodeText(n)}
	}
	var out []text
	for _, c := range items(n) {
		if c.Kind == yaml.SequenceNode {
			out = append(out, scripts(c)...)
		} else if c.Kind == yaml.ScalarNode {
			out = append(out, nodeText(c))
		}
	}
	return out
}
