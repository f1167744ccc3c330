package aws

import (
	"context"
	"errors"
	"fmt"
	"strings"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/middleware"
)

// errPrefixOp is returned for an S3 operation withPrefix does not translate.
var errPrefixOp = errors.New("S3 operation not supported with a bucket prefix")

// withPrefix makes the S3 client see the objects under prefix/ as the whole
// bucket: object keys and list prefixes sent get "prefix/" in front, keys
// listed lose it.
//
// Tessera v1.0.4 has its own BucketPrefix, but its idempotent write path
// (setObjectIfNoneMatch: on 412, compare with the stored object) prefixes the
// name twice when it reads the stored object back, so a write retried after
// a lost response (a network cut at the wrong moment) fails with NoSuchKey
// forever and the log stops growing. Doing the prefix here, below Tessera,
// keeps that path correct. Operations this does not know are refused rather
// than sent unprefixed.
func withPrefix(prefix string) func(*s3.Options) {
	p := strings.TrimSuffix(prefix, "/") + "/"
	key := func(k *string) *string {
		if k == nil {
			return nil
		}
		return awssdk.String(p + *k)
	}
	mw := middleware.InitializeMiddlewareFunc("trustfabricBucketPrefix", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		switch v := in.Parameters.(type) {
		case *s3.GetObjectInput:
			c := *v
			c.Key = key(v.Key)
			in.Parameters = &c
		case *s3.PutObjectInput:
			c := *v
			c.Key = key(v.Key)
			in.Parameters = &c
		case *s3.HeadObjectInput:
			c := *v
			c.Key = key(v.Key)
			in.Parameters = &c
		case *s3.DeleteObjectsInput:
			c := *v
			if v.Delete != nil {
				d := *v.Delete
				d.Objects = make([]s3types.ObjectIdentifier, len(v.Delete.Objects))
				for i, o := range v.Delete.Objects {
					o.Key = key(o.Key)
					d.Objects[i] = o
				}
				c.Delete = &d
			}
			in.Parameters = &c
		case *s3.ListObjectsV2Input:
			c := *v
			c.Prefix = awssdk.String(p + awssdk.ToString(v.Prefix))
			in.Parameters = &c
			out, md, err := next.HandleInitialize(ctx, in)
			if l, ok := out.Result.(*s3.ListObjectsV2Output); ok && err == nil {
				for i := range l.Contents {
					l.Contents[i].Key = awssdk.String(strings.TrimPrefix(awssdk.ToString(l.Contents[i].Key), p))
				}
				if l.Prefix != nil {
					l.Prefix = awssdk.String(strings.TrimPrefix(*l.Prefix, p))
				}
			}
			return out, md, err
		case *s3.CreateBucketInput, *s3.HeadBucketInput:
		default:
			return middleware.InitializeOutput{}, middleware.Metadata{}, fmt.Errorf("%w: %T", errPrefixOp, in.Parameters)
		}
		return next.HandleInitialize(ctx, in)
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(mw, middleware.Before)
		})
	}
}
