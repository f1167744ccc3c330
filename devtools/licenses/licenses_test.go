package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestDocsUpToDate regenerates docs/licenses.md from the module cache and
// fails when a dependency's licence is incompatible with Apache-2.0 or the
// committed page differs.
func TestDocsUpToDate(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := List(root, "./...")
	if err != nil {
		t.Fatal(err)
	}
	if len(mods) < 10 {
		t.Fatalf("go list found %d modules; want the whole dependency graph", len(mods))
	}
	if err := Check(mods); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := Markdown(&got, mods); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(root, "docs", "licenses.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("docs/licenses.md is stale: run go run ./devtools/licenses > docs/licenses.md")
	}
	// The project's own licence is the one the page claims.
	own, err := os.ReadFile(filepath.Join(root, "LICENSE"))
	if err != nil {
		t.Fatal(err)
	}
	if ids := Classify(string(own)); !slices.Equal(ids, []string{"Apache-2.0"}) {
		t.Fatalf("LICENSE classifies as %v, want [Apache-2.0]", ids)
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"gpl", "GNU GENERAL PUBLIC LICENSE\nVersion 3, 29 June 2007", []string{"GPL"}},
		{"agpl", "GNU AFFERO GENERAL PUBLIC LICENSE Version 3", []string{"AGPL"}},
		{"lgpl", "GNU LESSER GENERAL PUBLIC LICENSE\n Version 2.1", []string{"LGPL"}},
		{"mpl names gnu as secondary", "Mozilla Public License Version 2.0 ... the GNU General Public License, Version 2.0", []string{"MPL-2.0"}},
		{"mit", "Permission is hereby granted, free of charge, to any person obtaining a copy\nof this software", []string{"MIT"}},
		{"bsd3", "Redistribution and use in source and binary forms ... Neither the name of Google", []string{"BSD-3-Clause"}},
		{"bsd2", "Redistribution and use in source and binary forms, with or without modification", []string{"BSD-2-Clause"}},
		{"dual", "Apache License\nVersion 2.0\n...\nPermission is hereby granted, free of charge, to any person obtaining a copy", []string{"Apache-2.0", "MIT"}},
		{"unknown", "All rights reserved.", []string{"unknown"}},
	} {
		if got := Classify(tc.text); !slices.Equal(got, tc.want) {
			t.Errorf("%s: Classify = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	for _, ids := range [][]string{{"GPL"}, {"AGPL"}, {"LGPL"}, {"SSPL"}, {"unknown"}, {"MIT", "GPL"}} {
		err := Check([]Module{{Path: "example.com/m", Version: "v1.0.0", Files: []string{"LICENSE"}, Licenses: ids}})
		if !errors.Is(err, ErrIncompatible) {
			t.Errorf("Check(%v) = %v, want ErrIncompatible", ids, err)
		}
	}
	ok := []Module{
		{Path: "a", Licenses: []string{"Apache-2.0"}},
		{Path: "b", Licenses: []string{"MPL-2.0"}},
		{Path: "c", Licenses: []string{"Apache-2.0", "CC-BY-SA-4.0" + docsSuffix}},
	}
	if err := Check(ok); err != nil {
		t.Fatalf("Check(compatible) = %v", err)
	}
}

// TestModuleWithoutLicenseFile: a module directory with no licence file is
// "unknown", which Check refuses.
func TestModuleWithoutLicenseFile(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("hi"), 0o644); err != nil {
		t.Fatal(err)
	}
	m := Module{Path: "example.com/nolicense"}
	if err := readLicenses(dir, &m); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(Check([]Module{m}), ErrIncompatible) {
		t.Fatalf("module without a licence file passed: %+v", m)
	}
}
