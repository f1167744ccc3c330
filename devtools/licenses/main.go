// Command licenses lists the licence of every module Trustfabric builds or
// tests with, read from the LICENSE files in the module cache (no network),
// and refuses licences that cannot be combined with Apache-2.0.
//
//	go run ./devtools/licenses > docs/licenses.md
//
// The test in this directory fails when docs/licenses.md is out of date or a
// dependency's licence is not on the allowed list.
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// Module is one dependency and the licences found in its LICENSE files.
type Module struct {
	Path, Version string
	Files         []string // licence file names, relative to the module root
	Licenses      []string // SPDX identifiers, sorted; "unknown" when unrecognised
}

// ErrIncompatible is returned by Check when a dependency's licence cannot be
// combined with Apache-2.0 in a distributed binary, or is not recognised.
var ErrIncompatible = errors.New("licence incompatible with Apache-2.0 or not recognised")

// compatible lists the licences a dependency of an Apache-2.0 project may carry.
// MPL-2.0 is file-level copyleft: its files stay MPL, the combination may be Apache-2.0.
var compatible = map[string]bool{
	"Apache-2.0": true, "MIT": true, "BSD-2-Clause": true, "BSD-3-Clause": true,
	"ISC": true, "MPL-2.0": true, "CC-BY-4.0": true, "Unlicense": true,
}

// docsSuffix marks a licence that covers only a module's documentation.
const docsSuffix = " (documentation)"

var licenseFile = regexp.MustCompile(`(?i)^(licen[cs]e|copying|unlicense)(\.(md|txt|docs|libyaml))?$`)

// maxLicenseBytes bounds what is read of one licence file.
const maxLicenseBytes = 1 << 20

// Classify names the licences in one licence text. A text may hold several
// (a dual licence, or a bundled third-party notice); each is reported.
func Classify(text string) []string {
	t := strings.Join(strings.Fields(strings.ToLower(text)), " ")
	var found []string
	add := func(id string) { found = append(found, id) }
	mpl := strings.Contains(t, "mozilla public license") && strings.Contains(t, "version 2.0")
	switch {
	case mpl:
		// MPL-2.0 names the GNU licences as "Secondary Licenses"; they do not apply.
	case strings.Contains(t, "gnu affero general public license"):
		add("AGPL")
	case strings.Contains(t, "gnu lesser general public license"), strings.Contains(t, "gnu library general public license"):
		add("LGPL")
	case strings.Contains(t, "gnu general public license"):
		add("GPL")
	}
	if strings.Contains(t, "server side public license") {
		add("SSPL")
	}
	if strings.Contains(t, "apache license") && strings.Contains(t, "version 2.0") {
		add("Apache-2.0")
	}
	if strings.Contains(t, "permission is hereby granted, free of charge, to any person obtaining a copy") {
		add("MIT")
	}
	if strings.Contains(t, "redistribution and use in source and binary forms") {
		if strings.Contains(t, "neither the name") || strings.Contains(t, "names of its contributors may be used") {
			add("BSD-3-Clause")
		} else {
			add("BSD-2-Clause")
		}
	}
	if strings.Contains(t, "permission to use, copy, modify, and/or distribute this software for any purpose") ||
		strings.Contains(t, "permission to use, copy, modify, and distribute this software for any purpose with or without fee") {
		add("ISC")
	}
	if mpl {
		add("MPL-2.0")
	}
	if strings.Contains(t, "attribution-sharealike 4.0 international") {
		add("CC-BY-SA-4.0")
	}
	if strings.Contains(t, "creative commons attribution 4.0") {
		add("CC-BY-4.0")
	}
	if strings.Contains(t, "this is free and unencumbered software released into the public domain") {
		add("Unlicense")
	}
	if len(found) == 0 {
		add("unknown")
	}
	return found
}

// List returns the modules that `go list -deps -test` reaches from patterns in
// dir (the main module excluded), with their licences read from the module cache.
func List(dir string, patterns ...string) ([]Module, error) {
	args := append([]string{"list", "-mod=readonly", "-deps", "-test", "-f", "{{with .Module}}{{if not .Main}}{{.Path}}\t{{.Version}}\t{{.Dir}}{{end}}{{end}}"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOFLAGS=-mod=readonly", "GOPROXY=off")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	seen := map[string]bool{}
	var mods []Module
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 || seen[parts[0]] {
			continue
		}
		seen[parts[0]] = true
		m := Module{Path: parts[0], Version: parts[1]}
		if parts[2] == "" {
			return nil, fmt.Errorf("module %s@%s is not in the module cache: run go mod download", m.Path, m.Version)
		}
		if err := readLicenses(parts[2], &m); err != nil {
			return nil, err
		}
		mods = append(mods, m)
	}
	sort.Slice(mods, func(i, j int) bool { return mods[i].Path < mods[j].Path })
	return mods, nil
}

func readLicenses(dir string, m *Module) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("module %s: %w", m.Path, err)
	}
	ids := map[string]bool{}
	for _, e := range entries {
		if e.IsDir() || !licenseFile.MatchString(e.Name()) {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return fmt.Errorf("module %s: %w", m.Path, err)
		}
		b, err := io.ReadAll(io.LimitReader(f, maxLicenseBytes))
		f.Close()
		if err != nil {
			return fmt.Errorf("module %s: %w", m.Path, err)
		}
		m.Files = append(m.Files, e.Name())
		for _, id := range Classify(string(b)) {
			if strings.HasSuffix(strings.ToLower(e.Name()), ".docs") {
				// A licence of the module's documentation, none of which is
				// compiled in (opencontainers/go-digest's LICENSE.docs).
				id += docsSuffix
			}
			ids[id] = true
		}
	}
	if len(m.Files) == 0 {
		ids["unknown"] = true
	}
	for id := range ids {
		m.Licenses = append(m.Licenses, id)
	}
	sort.Strings(m.Licenses)
	return nil
}

// Check returns ErrIncompatible naming every module with a licence that is not
// compatible with Apache-2.0.
func Check(mods []Module) error {
	var bad []string
	for _, m := range mods {
		for _, id := range m.Licenses {
			if !compatible[id] && !strings.HasSuffix(id, docsSuffix) {
				bad = append(bad, fmt.Sprintf("%s@%s (%s in %s)", m.Path, m.Version, id, strings.Join(m.Files, ", ")))
			}
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%w: %s; replace the dependency or review the licence and extend devtools/licenses", ErrIncompatible, strings.Join(bad, "; "))
	}
	return nil
}

// Markdown renders docs/licenses.md.
func Markdown(w io.Writer, mods []Module) error {
	var b strings.Builder
	b.WriteString("# Dependency licences\n\n")
	b.WriteString("Trustfabric is licensed under the Apache License 2.0 (`LICENSE`). This page lists every module it builds or\n")
	b.WriteString("tests with (`go list -deps -test ./...`) and the licences found in that module's licence files in the module\n")
	b.WriteString("cache. It is generated, do not edit: `go run ./devtools/licenses > docs/licenses.md`. The test in\n")
	b.WriteString("`devtools/licenses` fails when this page is stale or a licence is not compatible with Apache-2.0.\n\n")
	b.WriteString("| module | version | licence | files |\n|---|---|---|---|\n")
	for _, m := range mods {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", m.Path, m.Version, strings.Join(m.Licenses, ", "), strings.Join(m.Files, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func main() {
	mods, err := List(".", "./...")
	if err == nil {
		err = Check(mods)
	}
	if err == nil {
		err = Markdown(os.Stdout, mods)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "licenses:", err)
		os.Exit(1)
	}
}
