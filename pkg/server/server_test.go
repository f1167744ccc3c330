package server_test

import (
	"errors"
	"testing"

	"github.com/trustfabric/trustfabric/pkg/server"
	"github.com/trustfabric/trustfabric/pkg/transparency"
)

// TestStorageConfigErrors: storage settings that cannot work are refused
// before anything is opened, naming the flag to fix.
func TestStorageConfigErrors(t *testing.T) {
	for name, sc := range map[string]transparency.StorageConfig{
		"unknown kind":         {Kind: "gcp"},
		"aws without database": {Kind: server.StorageAWS, S3Bucket: "b"},
		"aws without bucket":   {Kind: server.StorageAWS, DB: "u:p@tcp(127.0.0.1:1)/d"},
		"aws without key file": {Kind: server.StorageAWS, DB: "u:p@tcp(127.0.0.1:1)/d", S3Bucket: "b"},
		"posix with a bucket":  {S3Bucket: "b"},
		"posix with a db":      {Kind: server.StoragePOSIX, DB: "u:p@tcp(127.0.0.1:1)/d"},
	} {
		t.Run(name, func(t *testing.T) {
			s, err := server.New(t.Context(), server.Config{Addr: "127.0.0.1:0", Dir: t.TempDir(), Storage: sc})
			if err == nil {
				s.TS.Close(t.Context())
				t.Fatal("server started on an impossible storage configuration")
			}
			if !errors.Is(err, transparency.ErrConfig) {
				t.Fatalf("error = %v, want ErrConfig", err)
			}
		})
	}
}
