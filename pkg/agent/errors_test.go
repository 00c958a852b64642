package agent

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

func TestCodeOf(t *testing.T) {
	cause := errors.New("disk full")
	tests := []struct {
		name string
		err  error
		want Code
	}{
		{"nil", nil, ""},
		{"typed", Errorf(CodeNotFound, "tool %q", "x"), CodeNotFound},
		{"wrapped typed", fmt.Errorf("outer: %w", Errorf(CodeOverloaded, "busy")), CodeOverloaded},
		{"deadline", fmt.Errorf("x: %w", context.DeadlineExceeded), CodeTimeout},
		{"canceled", context.Canceled, CodeCanceled},
		{"plain", cause, CodeInternal},
		{"empty code", &Error{Message: "m"}, CodeInternal},
		{"remote", fmt.Errorf("call: %w", &mxp.RemoteError{Code: mxp.CodeUnreachable, Message: "no agent"}), CodeUnreachable},
		{"mxp code", mxp.CodeRateLimited, CodeRateLimited},
		{"bad payload", func() error { _, err := mxp.DecodeCall([]byte{1}); return err }(), CodeInvalidPayload},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CodeOf(tt.err); got != tt.want {
				t.Fatalf("CodeOf = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestErrorfWrapsAndMatches(t *testing.T) {
	cause := errors.New("disk full")
	err := Errorf(CodeInternal, "saving: %w", cause)
	if !errors.Is(err, cause) {
		t.Fatal("cause lost")
	}
	if err.Error() != "internal: saving: disk full" {
		t.Fatalf("Error() = %q", err.Error())
	}
	if !errors.Is(fmt.Errorf("x: %w", err), &Error{Code: CodeInternal}) {
		t.Fatal("errors.Is by code failed")
	}
	if errors.Is(err, &Error{Code: CodeNotFound}) {
		t.Fatal("matched a different code")
	}
	if (&Error{Code: CodeCanceled}).Error() != "canceled" {
		t.Fatal("bare code message")
	}
	if e := AsError(cause); e.Code != CodeInternal || e.Message != "disk full" {
		t.Fatalf("AsError = %+v", e)
	}
}
