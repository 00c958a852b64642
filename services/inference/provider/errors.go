package provider

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mxp-mesh/mesh/pkg/common/security"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// Code is the error code of the inference service: a subset of the mesh's one error
// vocabulary, mxp.ErrorCode (an alias), shared by the HTTP API, the bus API and metrics
// labels; its HTTP status is the code's (mxp.ErrorCode.HTTPStatus).
type Code = mxp.ErrorCode

// The codes the inference service sends. They are part of the public API: callers switch
// on them, and OpenAI-compatible clients read them in the error body's "code".
const (
	CodeInvalidRequest   = mxp.CodeInvalidRequest
	CodeUnauthenticated  = mxp.CodeUnauthenticated
	CodePermissionDenied = mxp.CodePermissionDenied
	CodeModelNotFound    = mxp.CodeModelNotFound
	CodeRateLimited      = mxp.CodeRateLimited
	CodeOverloaded       = mxp.CodeOverloaded
	CodeProviderError    = mxp.CodeProviderError
	CodeTimeout          = mxp.CodeTimeout
	CodeCircuitOpen      = mxp.CodeCircuitOpen
	CodeContextOverflow  = mxp.CodeContextOverflow
	CodeContentFiltered  = mxp.CodeContentFiltered
	CodeUnavailable      = mxp.CodeUnavailable
	CodeCanceled         = mxp.CodeCanceled
	CodeInternal         = mxp.CodeInternal
)

// Error is the one error type adapters and the service return.
type Error struct {
	Code     Code
	Provider string
	Model    string
	// Status is the upstream HTTP status, 0 when there was none.
	Status int
	// RetryAfter is the provider's Retry-After hint, 0 when absent.
	RetryAfter time.Duration
	// Retryable says the same request may succeed if sent again.
	Retryable bool
	Message   string
	Err       error
}

// Error is the error's text, with every secret registered process-wide removed
// (security.Scrub): its code, then Detail ("model_not_found: openai/gpt-x (HTTP 404):
// ..."); it is what logs and the bus API show.
func (e *Error) Error() string {
	d := e.Detail()
	if d == "" {
		return string(e.Code)
	}
	return string(e.Code) + ": " + d
}

// Detail is the error's text without its code, scrubbed as Error is: the provider and
// model, the upstream status, then the message ("openai/gpt-x (HTTP 429): slow down").
// The HTTP API's error body carries it as its message next to the code, which a client
// prints once ("model_not_found (HTTP 404): mxp/foo/bar: no online agent ..."), not twice.
func (e *Error) Detail() string {
	var b strings.Builder
	if e.Provider != "" {
		b.WriteString(e.Provider)
		if e.Model != "" {
			b.WriteString("/")
			b.WriteString(e.Model)
		}
	}
	if e.Status != 0 {
		if b.Len() > 0 {
			b.WriteString(" ")
		}
		fmt.Fprintf(&b, "(HTTP %d)", e.Status)
	}
	msg := e.Message
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	if msg != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(msg)
	}
	return security.Scrub(b.String())
}

func (e *Error) Unwrap() error { return e.Err }

// InferenceCode is the error's code (pkg/api/inference.CodedError), so that an agent
// hosting a model served by one of these adapters passes the code on.
func (e *Error) InferenceCode() string { return string(e.Code) }

// Errorf builds an Error with a code and a formatted message.
func Errorf(code Code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// AsError returns err as an *Error, classifying foreign errors (context, network, ...).
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{Code: CodeTimeout, Retryable: true, Message: "deadline exceeded", Err: err}
	case errors.Is(err, context.Canceled):
		return &Error{Code: CodeCanceled, Message: "canceled", Err: err}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Code: CodeTimeout, Retryable: true, Err: err}
	}
	return &Error{Code: CodeUnavailable, Retryable: true, Err: err}
}

// CodeOf returns the Code of any error (CodeInternal for nil-safe unknowns).
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	return AsError(err).Code
}

// IsRetryable reports whether err may succeed on another attempt.
func IsRetryable(err error) bool {
	e := AsError(err)
	return e != nil && e.Retryable
}

// MaxUpstreamExcerpt bounds the upstream's own text an error passes on (see
// StatusError).
const MaxUpstreamExcerpt = 200

// StatusError classifies an upstream HTTP error response into our codes. message is the
// provider's own error text (parsed by the adapter, or the bounded body); only an excerpt
// of it is kept: at most MaxUpstreamExcerpt bytes, one line, with every registered secret
// and anything shaped like a credential removed (security.Excerpt), so an upstream that
// echoes the request's key does not pass it on.
func StatusError(provider string, status int, header http.Header, message string) *Error {
	message = security.Excerpt(message, MaxUpstreamExcerpt)
	e := &Error{Provider: provider, Status: status, Message: message}
	if e.Message == "" {
		e.Message = http.StatusText(status)
	}
	e.RetryAfter = ParseRetryAfter(header.Get("Retry-After"), time.Now())
	switch {
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		e.Code = CodeInvalidRequest
		if looksLikeContextOverflow(message) {
			e.Code = CodeContextOverflow
		}
	case status == http.StatusUnauthorized:
		e.Code = CodeUnauthenticated
	case status == http.StatusForbidden:
		e.Code = CodePermissionDenied
	case status == http.StatusNotFound:
		e.Code = CodeModelNotFound
	case status == http.StatusRequestEntityTooLarge:
		e.Code = CodeContextOverflow
	case status == http.StatusTooManyRequests:
		e.Code, e.Retryable = CodeRateLimited, true
	case status == 529 || status == http.StatusServiceUnavailable:
		e.Code, e.Retryable = CodeOverloaded, true
	case status == http.StatusRequestTimeout || status == http.StatusGatewayTimeout:
		e.Code, e.Retryable = CodeTimeout, true
	case status >= 500:
		e.Code, e.Retryable = CodeProviderError, true
	default:
		e.Code = CodeProviderError
	}
	return e
}

// upstreamError is an error whose message is the upstream's own text, such as a stream's
// error event. Like StatusError it keeps only an excerpt (security.Excerpt: at most
// MaxUpstreamExcerpt bytes, one line, no control characters, registered secrets and
// credential-shaped text blanked), or "stream error" when nothing of it is left.
func upstreamError(provider string, code Code, retryable bool, message string) *Error {
	message = security.Excerpt(message, MaxUpstreamExcerpt)
	if message == "" {
		message = "stream error"
	}
	return &Error{Code: code, Provider: provider, Retryable: retryable, Message: message}
}

func looksLikeContextOverflow(msg string) bool {
	m := strings.ToLower(msg)
	for _, s := range []string{"context_length_exceeded", "context length", "prompt is too long",
		"maximum context", "too many tokens", "exceeds the maximum number of tokens"} {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// ParseRetryAfter reads a Retry-After header: delta-seconds or an HTTP date. Bad or
// negative values give 0.
func ParseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(v, 64); err == nil {
		if secs <= 0 || secs > 24*3600 {
			return 0
		}
		return time.Duration(secs * float64(time.Second))
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
