package workload

import "errors"

// Sentinel errors; every error of this package wraps one of them, one of
// package wimse's, or the CI token source's.
var (
	// ErrNoProvider: no CI platform or SPIFFE agent was detected, or the name
	// is unknown.
	ErrNoProvider = errors.New("no identity provider")
	// ErrConfig: a required input (the identity server URL) is missing.
	ErrConfig = errors.New("invalid workload identity request")
	// ErrExchange: the identity server refused an exchange; see
	// *ExchangeError for the OAuth error code.
	ErrExchange = errors.New("token exchange refused")
	// ErrUnavailable: the identity server could not be reached or answered
	// with an unexpected status.
	ErrUnavailable = errors.New("identity server unavailable")
)
