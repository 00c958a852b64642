package main

import (
	"context"
	"strings"
	"testing"
)

// TestStreamCommand: mxp stream opens a stream through a real mesh and prints the chunks
// in order (the inference service streams its answer as JSON chunks); a stream that ends
// with an Error, and a target that serves no streams, print the code and exit 1.
func TestStreamCommand(t *testing.T) {
	dir := startDev(t)
	ctx := context.Background()
	code, out, errOut := runCLI(ctx, "stream", "--to", "inference", "--kind", "json", "--data-dir", dir,
		"--data", `{"model":"mock","messages":[{"role":"user","content":"hi there"}]}`)
	if code != 0 || !strings.Contains(out, `{"text":"Mock`) || !strings.Contains(out, `"model":"mock"`) || !strings.HasSuffix(out, "\n") {
		t.Fatalf("stream to inference: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}
	if i, j := strings.Index(out, `{"text"`), strings.Index(out, `"model":"mock"`); i > j {
		t.Fatalf("summary before the text:\n%s", out)
	}

	code, out, errOut = runCLI(ctx, "stream", "--to", "inference", "--kind", "json", "--data-dir", dir,
		"--data", `{"model":"no-such-model","messages":[{"role":"user","content":"hi"}]}`)
	if code != 1 || out != "" || !strings.HasPrefix(errOut, "error: model_not_found: ") {
		t.Fatalf("stream with an unknown model: exit %d\nstdout %q\nstderr %s", code, out, errOut)
	}

	code, _, errOut = runCLI(ctx, "stream", "--to", "6ba7b810-9dad-11d1-80b4-00c04fd430c8", "--data", "{}", "--data-dir", dir)
	if code != 1 || !strings.HasPrefix(errOut, "error: unreachable: ") {
		t.Fatalf("stream to nobody: exit %d\nstderr %s", code, errOut)
	}
	code, _, errOut = runCLI(ctx, "stream", "--data", "{}", "--data-dir", dir)
	if code != 2 || !strings.Contains(errOut, "--to is required") {
		t.Fatalf("stream without --to: exit %d %s", code, errOut)
	}
}
