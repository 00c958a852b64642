package log

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/mxp-mesh/mesh/pkg/common/security"
)

// A registered secret leaves no log line, whichever way it got there: the message, a
// string value, an error, a group, an attribute added with With.
func TestLogsScrubRegisteredSecrets(t *testing.T) {
	const key = "log-scrub-test-key-7781"
	security.RegisterSecrets(security.NewSecret(key))
	var buf bytes.Buffer
	l := New(Options{Service: "inference", Writer: &buf, Level: new(slog.LevelVar)})
	l.With("url", "https://up.test/?key="+key).Info("upstream said "+key,
		"body", `{"error":"bad key `+key+`"}`,
		"err", errors.New("401: "+key),
		slog.Group("req", slog.String("auth", "Bearer "+key)),
		"n", 3)
	out := buf.String()
	if strings.Contains(out, key) {
		t.Fatalf("key in the log line: %s", out)
	}
	if strings.Count(out, security.Redacted) != 5 || !strings.Contains(out, `"n":3`) {
		t.Fatalf("want 5 redactions and the other values unchanged: %s", out)
	}
}
