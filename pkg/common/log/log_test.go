package log

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestContextFields(t *testing.T) {
	otelTID, _ := trace.TraceIDFromHex("0102030405060708090a0b0c0d0e0f10")
	sid, _ := trace.SpanIDFromHex("0102030405060708")
	spanCtx := trace.ContextWithSpanContext(context.Background(),
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: otelTID, SpanID: sid}))
	tests := []struct {
		name string
		ctx  context.Context
		want map[string]string
	}{
		{"none", context.Background(), map[string]string{KeyService: "registry"}},
		{"all", WithFields(context.Background(), Fields{TraceID: 0xabc, MsgID: 7, AgentID: "ag"}),
			map[string]string{KeyTraceID: "0000000000000abc", KeyMsgID: "0000000000000007", KeyAgentID: "ag"}},
		{"merge", WithFields(WithFields(context.Background(), Fields{AgentID: "ag"}), Fields{MsgID: 1}),
			map[string]string{KeyMsgID: "0000000000000001", KeyAgentID: "ag"}},
		{"otel", spanCtx, map[string]string{KeyTraceID: otelTID.String(), KeySpanID: sid.String()}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := New(Options{Service: "registry", Writer: &buf})
			l.InfoContext(tc.ctx, "hello")
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatalf("not JSON: %s", buf.String())
			}
			if line["service"] != "registry" || line["msg"] != "hello" {
				t.Fatalf("line = %v", line)
			}
			for k, v := range tc.want {
				if line[k] != v {
					t.Errorf("%s = %v, want %s", k, line[k], v)
				}
			}
			if tc.name == "none" {
				for _, k := range []string{KeyTraceID, KeyMsgID, KeyAgentID} {
					if _, ok := line[k]; ok {
						t.Errorf("%s present without context", k)
					}
				}
			}
		})
	}
}

// An id the line carries explicitly is not written twice (duplicate JSON keys): the
// explicit one wins, from the record or from the logger's With.
func TestContextFieldsNotDuplicated(t *testing.T) {
	ctx := WithFields(context.Background(), Fields{TraceID: 0xabc, MsgID: 7, AgentID: "caller"})
	for _, tc := range []struct {
		name string
		log  func(l *slog.Logger)
	}{
		{"record", func(l *slog.Logger) { l.InfoContext(ctx, "hello", KeyAgentID, "subject") }},
		{"with", func(l *slog.Logger) { l.With(KeyAgentID, "subject").InfoContext(ctx, "hello") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			tc.log(New(Options{Service: "registry", Writer: &buf}))
			if n := bytes.Count(buf.Bytes(), []byte(`"`+KeyAgentID+`"`)); n != 1 {
				t.Fatalf("%d %s keys in %s", n, KeyAgentID, buf.String())
			}
			var line map[string]any
			if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
				t.Fatal(err)
			}
			if line[KeyAgentID] != "subject" || line[KeyTraceID] != "0000000000000abc" || line[KeyMsgID] != "0000000000000007" {
				t.Fatalf("line = %v", line)
			}
		})
	}
}

func TestLevelVarLive(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	l := New(Options{Service: "s", Writer: &buf, Level: lv})
	l.Debug("hidden")
	lv.Set(slog.LevelDebug)
	l.Debug("shown")
	if bytes.Contains(buf.Bytes(), []byte("hidden")) || !bytes.Contains(buf.Bytes(), []byte("shown")) {
		t.Fatalf("level change not live: %s", buf.String())
	}
	for in, want := range map[string]slog.Level{"debug": slog.LevelDebug, "WARN": slog.LevelWarn, "error": slog.LevelError} {
		if got, err := ParseLevel(in); err != nil || got != want {
			t.Errorf("ParseLevel(%q) = %v %v", in, got, err)
		}
	}
	if _, err := ParseLevel("loud"); err == nil {
		t.Error("ParseLevel(loud) must fail")
	}
}
