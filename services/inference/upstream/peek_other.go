//go:build !unix

package upstream

// peekSocket cannot look without blocking here: idle connections are found closed on
// use (and the request retried, see Transport.RoundTrip) and stream writers flush after
// every event.
func peekSocket(uintptr) (sockState, bool) { return sockIdle, false }
