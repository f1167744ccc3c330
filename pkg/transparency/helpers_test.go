package transparency_test

import (
	"encoding/base64"
	"io"
)

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func ioPipe() (*io.PipeReader, *io.PipeWriter) { return io.Pipe() }
