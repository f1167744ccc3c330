// Package awstest gives tests a scratch log on the MariaDB + S3-compatible
// store started by `.ci/backends.sh up DIR` (or on any MySQL-compatible
// database and S3 bucket named by the same variables). Tests that use it skip,
// saying how to start the backends, when the variables are not set.
package awstest

import (
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// The variables printed by `.ci/backends.sh up DIR`. AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_REGION are read by the AWS SDK itself.
const (
	EnvDSN      = "TF_DB_DSN"
	EnvEndpoint = "TF_S3_ENDPOINT"
	EnvBucket   = "TF_S3_BUCKET"
	// EnvRequire, when non-empty, turns the skips of tests that need the
	// backends into failures (.ci/run sets it, so a test that would skip
	// there fails instead).
	EnvRequire = "TF_REQUIRE_BACKENDS"
)

// Skip skips t with the reason, or fails it when EnvRequire is set.
func Skip(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvRequire) != "" {
		t.Fatalf("%s is set but: %s", EnvRequire, reason)
	}
	t.Skip(reason)
}

// Target is one scratch log: its own database and its own prefix in the
// bucket.
type Target struct {
	// DSN names a fresh database, dropped when the test ends.
	DSN string
	// Bucket, Prefix and Endpoint locate the log's objects; path-style
	// addressing is needed when Endpoint is set.
	Bucket, Prefix, Endpoint string
}

// New creates a scratch database (named trustfabric_test_<random>; the user of
// TF_DB_DSN needs CREATE and DROP on it, which backends.sh grants) and a
// random bucket prefix, or skips the test when the backends are not
// configured.
func New(t testing.TB) Target {
	t.Helper()
	dsn, bucket := os.Getenv(EnvDSN), os.Getenv(EnvBucket)
	if dsn == "" || bucket == "" || os.Getenv("AWS_ACCESS_KEY_ID") == "" {
		Skip(t, fmt.Sprintf("MariaDB + S3 backends not configured (%s, %s, AWS_ACCESS_KEY_ID unset): run `eval \"$(.ci/backends.sh up /tmp/tf-backends)\"` first (.ci/run does)", EnvDSN, EnvBucket))
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", EnvDSN, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	name := strings.ReplaceAll(cfg.DBName, "-", "_") + "_test_" + suffix
	admin, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		t.Fatalf("create scratch database %s (does the user of %s have CREATE on %s_test_%%?): %v", name, EnvDSN, cfg.DBName, err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec("DROP DATABASE " + name); err != nil {
			t.Errorf("drop scratch database %s: %v", name, err)
		}
		admin.Close()
	})
	cfg.DBName = name
	return Target{DSN: cfg.FormatDSN(), Bucket: bucket, Prefix: "test-" + suffix, Endpoint: os.Getenv(EnvEndpoint)}
}
