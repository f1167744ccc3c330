package transparency_test

import (
	"encoding/base64"
	"io"
	"os"
)

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func ioPipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }

func writeFile(tb interface{ Fatal(...any) }, path string, b []byte) {
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}
