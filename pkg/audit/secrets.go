package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"regexp"
	"strings"
)

// Hard-coded secrets, found the way secret scanners find them: known token
// formats (each with a fixed prefix), private key headers, credentials in
// URLs, literal passwords given to a registry login, and high-entropy values
// under secret-looking keys. Every line of every file is scanned. A secret
// is never copied into a finding: only its fingerprint is.

type tokenFormat struct {
	name   string
	prefix string // a cheap filter before the regexp
	re     *regexp.Regexp
}

var tokenFormats = []tokenFormat{
	{"GitHub personal access token", "ghp_", regexp.MustCompile(`\bghp_[A-Za-z0-9]{36}\b`)},
	{"GitHub OAuth token", "gho_", regexp.MustCompile(`\bgho_[A-Za-z0-9]{36}\b`)},
	{"GitHub user-to-server token", "ghu_", regexp.MustCompile(`\bghu_[A-Za-z0-9]{36}\b`)},
	{"GitHub server-to-server token", "ghs_", regexp.MustCompile(`\bghs_[A-Za-z0-9]{36}\b`)},
	{"GitHub refresh token", "ghr_", regexp.MustCompile(`\bghr_[A-Za-z0-9]{36}\b`)},
	{"GitHub fine-grained personal access token", "github_pat_", regexp.MustCompile(`\bgithub_pat_[A-Za-z0-9_]{60,}`)},
	{"GitLab personal access token", "glpat-", regexp.MustCompile(`\bglpat-[A-Za-z0-9_-]{20,}`)},
	{"GitLab deploy token", "gldt-", regexp.MustCompile(`\bgldt-[A-Za-z0-9_-]{20,}`)},
	{"GitLab runner token", "glrt-", regexp.MustCompile(`\bglrt-[A-Za-z0-9_-]{20,}`)},
	{"GitLab pipeline trigger token", "glptt-", regexp.MustCompile(`\bglptt-[A-Za-z0-9_-]{20,}`)},
	{"AWS access key id", "AKIA", regexp.MustCompile(`\bAKIA[A-Z2-7]{16}\b`)},
	{"AWS temporary access key id", "ASIA", regexp.MustCompile(`\bASIA[A-Z2-7]{16}\b`)},
	{"Google API key", "AIza", regexp.MustCompile(`\bAIza[0-9A-Za-z_-]{35}`)},
	{"Slack token", "xox", regexp.MustCompile(`\bxox[abposr]-[0-9A-Za-z-]{10,}`)},
	{"npm access token", "npm_", regexp.MustCompile(`\bnpm_[A-Za-z0-9]{36}\b`)},
	{"PyPI API token", "pypi-", regexp.MustCompile(`\bpypi-AgE[A-Za-z0-9_-]{50,}`)},
	{"Docker Hub access token", "dckr_pat_", regexp.MustCompile(`\bdckr_pat_[A-Za-z0-9_-]{27,}`)},
	{"Stripe live secret key", "sk_live_", regexp.MustCompile(`\bsk_live_[0-9A-Za-z]{24,}`)},
}

var (
	rePEM      = regexp.MustCompile(`-----BEGIN ((?:RSA |EC |DSA |OPENSSH |ENCRYPTED |PGP )?PRIVATE KEY(?: BLOCK)?)-----`)
	reURLCreds = regexp.MustCompile(`[a-z][a-z0-9+.-]*://[^/\s:@'"]+:([^/\s@'"]{6,})@`)
	reLiteralP = regexp.MustCompile(`(?:^|\s)(?:-p|--password)(?:=|\s+)["']?([^\s"'$<{][^\s"']{5,})`)
	// secretWords are the parts of a key that names a secret.
	secretWords = []string{"password", "passwd", "secret", "token", "credential", "auth",
		"apikey", "api_key", "api-key", "access_key", "access-key", "accesskey",
		"private_key", "private-key", "privatekey", "signing_key", "signing-key"}
)

// Fingerprint returns the first 8 hex digits of the SHA-256 of a secret, the
// only form in which this package reports one.
func Fingerprint(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:4])
}

func scanSecrets(c *collector) {
	for i, ln := range c.lines {
		if len(ln) > 4096 {
			ln = ln[:4096]
		}
		line := i + 1
		for _, tf := range tokenFormats {
			if !strings.Contains(ln, tf.prefix) {
				continue
			}
			for _, loc := range tf.re.FindAllStringIndex(ln, -1) {
				c.addSecret(line, loc[0]+1, tf.name, ln[loc[0]:loc[1]])
			}
		}
		if strings.Contains(ln, "-----BEGIN ") {
			if m := rePEM.FindStringSubmatchIndex(ln); m != nil {
				material := strings.TrimSpace(strings.TrimPrefix(ln[m[1]:], `\n`))
				if strings.HasPrefix(material, "#") {
					material = ""
				}
				if material == "" && i+1 < len(c.lines) {
					material = strings.TrimSpace(c.lines[i+1])
				}
				if material == "" {
					material = ln[m[0]:m[1]]
				}
				c.addSecret(line, m[0]+1, strings.ToLower(ln[m[2]:m[3]]), material)
			}
		}
		if strings.Contains(ln, "://") {
			for _, m := range reURLCreds.FindAllStringSubmatchIndex(ln, -1) {
				if pw := ln[m[2]:m[3]]; !strings.HasPrefix(pw, "$") {
					c.addSecret(line, m[2]+1, "password in a URL", pw)
				}
			}
		}
		if strings.Contains(ln, "login") && (strings.Contains(ln, "-p") || strings.Contains(ln, "--password")) && reLogin.MatchString(ln) {
			if m := reLiteralP.FindStringSubmatchIndex(ln); m != nil {
				c.addSecret(line, m[2]+1, "registry password", ln[m[2]:m[3]])
			}
		}
		keyedValues(ln, func(key string, at int, v string) {
			if looksLikeSecret(v) {
				c.addSecret(line, at+1, "high-entropy value of "+key, v)
			}
		})
	}
}

// keyedValues calls f for each `key: value`, `KEY=value` or `"key": "value"`
// in ln whose key names a secret, with the value's offset. (A scan by hand:
// an unanchored regexp here costs more than the rest of the audit.)
func keyedValues(ln string, f func(key string, at int, value string)) {
	for i := 0; i < len(ln); i++ {
		ch := ln[i]
		if ch != ':' && ch != '=' {
			continue
		}
		j := i
		for j > 0 && ln[j-1] == ' ' {
			j--
		}
		if j > 0 && (ln[j-1] == '"' || ln[j-1] == '\'') {
			j--
		}
		k := j
		for k > 0 && isKeyChar(ln[k-1]) {
			k--
		}
		if k == j || strings.HasSuffix(ln[:k], "://") || !secretKey(ln[k:j]) {
			continue
		}
		v := i + 1
		for v < len(ln) && ln[v] == ' ' {
			v++
		}
		if v < len(ln) && (ln[v] == '"' || ln[v] == '\'') {
			v++
		}
		e := v
		for e < len(ln) && !strings.ContainsRune(" \t\"'#,;}", rune(ln[e])) {
			e++
		}
		if e > v {
			f(ln[k:j], v, ln[v:e])
		}
	}
}

func isKeyChar(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b == '_' || b == '-' || b == '.'
}

func secretKey(key string) bool {
	return containsAny(strings.ToLower(key), secretWords)
}

func containsAny(s string, words []string) bool {
	for _, w := range words {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// looksLikeSecret: long, random-looking, not a reference or a path.
func looksLikeSecret(v string) bool {
	if len(v) < 16 || len(v) > 1000 {
		return false
	}
	switch v[0] {
	case '$', '<', '{', '%', '(', '/', '.', '~', '[', '*', '&':
		return false
	}
	if strings.Contains(v, "${") || strings.Contains(v, "$(") || strings.Contains(v, "://") ||
		strings.HasPrefix(v, "sha256:") || strings.HasPrefix(v, "sha512:") {
		return false
	}
	var digit, letter bool
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			digit = true
		case r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z':
			letter = true
		}
	}
	return digit && letter && entropy(v) >= 3.5
}

// entropy is the Shannon entropy of s in bits per byte.
func entropy(s string) float64 {
	var counts [256]int
	for i := 0; i < len(s); i++ {
		counts[s[i]]++
	}
	n := float64(len(s))
	var h float64
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}

func (c *collector) addSecret(line, col int, what, value string) {
	fp := Fingerprint(value)
	key := fmt.Sprintf("secret:%d:%s", line, fp)
	if c.flagged[key] {
		return
	}
	if c.flagged == nil {
		c.flagged = map[string]bool{}
	}
	c.flagged[key] = true
	if f := c.add(RuleHardcodedSecret, line, col, what+" written in the file (fingerprint "+fp+")"); f != nil {
		f.Fingerprint = fp
	}
}
