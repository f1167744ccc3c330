package oci

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Descriptor is an OCI content descriptor (image-spec descriptor.md).
type Descriptor struct {
	MediaType    string            `json:"mediaType"`
	Digest       string            `json:"digest"`
	Size         int64             `json:"size"`
	ArtifactType string            `json:"artifactType,omitempty"`
	Data         string            `json:"data,omitempty"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	Platform     *Platform         `json:"platform,omitempty"`
}

// Platform is the platform of an index entry.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// manifest is an OCI image manifest. Field order is the order of the spec's examples, so
// the bytes we write are stable.
type manifest struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Config        Descriptor        `json:"config"`
	Layers        []Descriptor      `json:"layers"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// index is an OCI image index (also the referrers response and the tag-schema index).
type index struct {
	SchemaVersion int               `json:"schemaVersion"`
	MediaType     string            `json:"mediaType,omitempty"`
	ArtifactType  string            `json:"artifactType,omitempty"`
	Manifests     []Descriptor      `json:"manifests"`
	Subject       *Descriptor       `json:"subject,omitempty"`
	Annotations   map[string]string `json:"annotations,omitempty"`
}

// emptyConfig is the OCI empty descriptor, exactly as image-spec manifest.md
// "Guidance for an Empty Descriptor" defines it, including its inline data.
var emptyConfig = Descriptor{MediaType: EmptyMediaType, Digest: EmptyDigest, Size: 2, Data: emptyData}

// Annotations are the facts about a transparent statement that a referrers listing shows.
// The caller extracts them from the statement (pkg/oci does not parse COSE).
type Annotations struct {
	Created       time.Time // org.opencontainers.image.created; zero means now
	Issuer        string    // statement CWT iss
	Subject       string    // statement CWT sub
	TS            []string  // issuers of the receipts (transparency services)
	EntryID       string    // hex SHA-256 entry id
	PredicateType string    // in-toto predicateType of the preimage ("" for other payloads)
	ContentType   string    // media type of the preimage (the statement's declared content type)
}

// Map returns the annotation map (empty values omitted).
func (a Annotations) Map() map[string]string {
	created := a.Created
	if created.IsZero() {
		created = time.Now()
	}
	m := map[string]string{annotationCreated: created.UTC().Format(time.RFC3339)}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	set(AnnotationIssuer, a.Issuer)
	set(AnnotationSubject, a.Subject)
	set(AnnotationTS, strings.Join(a.TS, ","))
	set(AnnotationEntryID, a.EntryID)
	set(AnnotationPredicate, a.PredicateType)
	set(AnnotationContentType, a.ContentType)
	return m
}

// annotationsFrom is the inverse of Annotations.Map.
func annotationsFrom(m map[string]string) Annotations {
	a := Annotations{Issuer: m[AnnotationIssuer], Subject: m[AnnotationSubject], EntryID: m[AnnotationEntryID],
		PredicateType: m[AnnotationPredicate], ContentType: m[AnnotationContentType]}
	if ts := m[AnnotationTS]; ts != "" {
		a.TS = strings.Split(ts, ",")
	}
	if t, err := time.Parse(time.RFC3339, m[annotationCreated]); err == nil {
		a.Created = t.UTC()
	}
	return a
}

// digestOf returns "sha256:<hex>" of b.
func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// blob is content to upload with its descriptor.
type blob struct {
	desc Descriptor
	data []byte
}

// newBlob describes data; a title becomes the layer's org.opencontainers.image.title,
// the file name `oras pull` writes it to.
func newBlob(mediaType string, data []byte, title string) blob {
	d := Descriptor{MediaType: mediaType, Digest: digestOf(data), Size: int64(len(data))}
	if title != "" {
		d.Annotations = map[string]string{AnnotationTitle: title}
	}
	return blob{desc: d, data: data}
}

// referrerManifest builds the manifest of design §2.5 for one transparent statement.
func referrerManifest(subject Descriptor, artifactType string, statement, preimage blob, ann map[string]string) ([]byte, error) {
	m := manifest{
		SchemaVersion: 2,
		MediaType:     ManifestMediaType,
		ArtifactType:  artifactType,
		Config:        emptyConfig,
		Layers:        []Descriptor{statement.desc, preimage.desc},
		Subject:       &Descriptor{MediaType: subject.MediaType, Digest: subject.Digest, Size: subject.Size},
		Annotations:   ann,
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode referrer manifest: %w", err)
	}
	return b, nil
}

// sortDescriptors orders index entries by digest (deterministic fallback indexes).
func sortDescriptors(ds []Descriptor) {
	sort.Slice(ds, func(i, j int) bool { return ds[i].Digest < ds[j].Digest })
}
