package oci

import "time"

// Listing is the summary of a Discovery that `trustfabric discover --output
// json` prints: every referrer with what its annotations say, without
// fetching a blob.
type Listing struct {
	Image     string           `json:"image"` // registry/repository@digest
	Mode      Mode             `json:"mode"`
	Referrers []ListedReferrer `json:"referrers"`
}

// ListedReferrer is one referrer of a Listing.
type ListedReferrer struct {
	Digest        string   `json:"digest"`
	ArtifactType  string   `json:"artifactType"`
	Issuer        string   `json:"issuer,omitempty"`
	Subject       string   `json:"subject,omitempty"`
	TS            []string `json:"transparencyServices,omitempty"`
	EntryID       string   `json:"entryId,omitempty"`
	PredicateType string   `json:"predicateType,omitempty"`
	ContentType   string   `json:"contentType,omitempty"`
	Created       string   `json:"created,omitempty"`
	Error         string   `json:"error,omitempty"`
}

// Payload names what a statement carries: the in-toto predicate type, else
// the content type of another payload, else "-".
func (e ListedReferrer) Payload() string {
	switch {
	case e.PredicateType != "":
		return e.PredicateType
	case e.ContentType != "":
		return e.ContentType
	}
	return "-"
}

// Listing summarises the discovery.
func (d *Discovery) Listing() Listing {
	l := Listing{Image: d.Repository + "@" + d.Digest, Mode: d.Mode, Referrers: make([]ListedReferrer, 0, len(d.Entries))}
	for _, e := range d.Entries {
		r := ListedReferrer{Digest: e.Descriptor.Digest, ArtifactType: e.Descriptor.ArtifactType,
			Issuer: e.Annotations.Issuer, Subject: e.Annotations.Subject, TS: e.Annotations.TS,
			EntryID: e.Annotations.EntryID, PredicateType: e.Annotations.PredicateType,
			ContentType: e.Annotations.ContentType}
		if !e.Annotations.Created.IsZero() {
			r.Created = e.Annotations.Created.Format(time.RFC3339)
		}
		if e.Err != nil {
			r.Error = e.Err.Error()
		}
		l.Referrers = append(l.Referrers, r)
	}
	return l
}
