package aws

import (
	"bytes"
	"errors"
	"io"
	"testing"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/trustfabric/trustfabric/pkg/transparency/storage/aws/awstest"
)

// TestBucketPrefix: through the prefixed client the objects under prefix/
// are the whole bucket, including on the path Tessera takes when a
// conditional write finds the object already there (read it back by the
// same name: Tessera v1.0.4's own BucketPrefix read prefix/prefix/name).
func TestBucketPrefix(t *testing.T) {
	tg := awstest.New(t)
	ctx := t.Context()
	cfg := Config{Bucket: tg.Bucket, Endpoint: tg.Endpoint, PathStyle: tg.Endpoint != "", BucketPrefix: tg.Prefix}
	sdk, opts, err := sdkConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	prefixed := s3.NewFromConfig(*sdk, opts)
	cfg.BucketPrefix = ""
	sdk, opts, err = sdkConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	whole := s3.NewFromConfig(*sdk, opts)

	get := func(c *s3.Client, key string) ([]byte, error) {
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &tg.Bucket, Key: &key})
		if err != nil {
			return nil, err
		}
		defer out.Body.Close()
		return io.ReadAll(out.Body)
	}
	data := []byte("tile bytes")
	const name = "tile/0/000"
	for i := range 2 {
		_, err := prefixed.PutObject(ctx, &s3.PutObjectInput{Bucket: &tg.Bucket, Key: awssdk.String(name), Body: bytes.NewReader(data), IfNoneMatch: awssdk.String("*")})
		var api smithy.APIError
		switch {
		case i == 0 && err != nil:
			t.Fatalf("first conditional put: %v", err)
		case i == 1 && !(errors.As(err, &api) && api.ErrorCode() == "PreconditionFailed"):
			t.Fatalf("second conditional put = %v, want PreconditionFailed", err)
		}
	}
	if got, err := get(prefixed, name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back through the prefix: %q, %v", got, err)
	}
	if got, err := get(whole, tg.Prefix+"/"+name); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("object is not under %s/: %q, %v", tg.Prefix, got, err)
	}
	if _, err := get(whole, name); err == nil {
		t.Fatalf("object %s written outside the prefix", name)
	}
	l, err := prefixed.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &tg.Bucket, Prefix: awssdk.String("tile/")})
	if err != nil || len(l.Contents) != 1 || awssdk.ToString(l.Contents[0].Key) != name {
		t.Fatalf("list through the prefix = %+v, %v; want one object %s", l, err, name)
	}
	if _, err := prefixed.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &tg.Bucket,
		Delete: &s3types.Delete{Objects: []s3types.ObjectIdentifier{{Key: l.Contents[0].Key}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := get(whole, tg.Prefix+"/"+name); err == nil {
		t.Fatal("delete through the prefix left the object")
	}
	_, err = prefixed.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &tg.Bucket, Key: awssdk.String("x"), CopySource: awssdk.String(tg.Bucket + "/" + name)})
	if !errors.Is(err, errPrefixOp) {
		t.Fatalf("an operation the prefix does not know = %v, want refused", err)
	}
}
