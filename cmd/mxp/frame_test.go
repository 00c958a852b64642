package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

const vectorsPath = "../../pkg/mxp/testdata/codec-v0.2.0.txt"

func run(t *testing.T, stdin []byte, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = execute(context.Background(), args, bytes.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), code
}

type cliVector struct {
	valid  bool
	attrs  string // the rest of a VALID line
	hex    string
	decode string
}

func readVectors(t *testing.T) []cliVector {
	t.Helper()
	file, err := os.Open(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var out []cliVector
	var cur cliVector
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "VALID "):
			cur = cliVector{valid: true, attrs: line}
		case strings.HasPrefix(line, "CASE "):
			cur = cliVector{}
		case line == "HEX" || strings.HasPrefix(line, "HEX "):
			cur.hex = strings.TrimSpace(strings.TrimPrefix(line, "HEX"))
		case strings.HasPrefix(line, "DECODE "):
			cur.decode = strings.TrimPrefix(line, "DECODE ")
			out = append(out, cur)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) < 30 {
		t.Fatalf("only %d vectors", len(out))
	}
	return out
}

var (
	okPayload = regexp.MustCompile(` payload=\S*$`)
	errFields = regexp.MustCompile(`^err (\w+) \{.*\} :: (.*)$`)
)

// expectedLine turns a DECODE line of the vectors into what `mxp frame decode` prints:
// "ok ... payload_len=N" without the payload, "err Kind: message" without the fields.
func expectedLine(t *testing.T, decode string) string {
	if strings.HasPrefix(decode, "ok ") {
		return okPayload.ReplaceAllString(decode, "")
	}
	m := errFields.FindStringSubmatch(decode)
	if m == nil {
		t.Fatalf("unexpected DECODE line %q", decode)
	}
	return fmt.Sprintf("err %s: %s", m[1], m[2])
}

func TestFrameDecodeVectors(t *testing.T) {
	vectors := readVectors(t)
	var in strings.Builder
	for _, v := range vectors {
		in.WriteString(v.hex + "\n")
	}
	stdout, stderr, code := run(t, []byte(in.String()), "frame", "decode")
	if code != 1 || stderr != "" {
		t.Fatalf("exit %d (want 1: some vectors are bad frames), stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
	if len(lines) != len(vectors) {
		t.Fatalf("%d output lines for %d frames", len(lines), len(vectors))
	}
	for i, v := range vectors {
		if want := expectedLine(t, v.decode); lines[i] != want {
			t.Errorf("frame %d:\n got  %s\n want %s", i, lines[i], want)
		}
	}
	// Only good frames: exit 0.
	var good strings.Builder
	for _, v := range vectors {
		if v.valid {
			good.WriteString(v.hex + "\n")
		}
	}
	if _, _, code := run(t, []byte(good.String()), "frame", "decode"); code != 0 {
		t.Fatalf("exit %d for good frames only", code)
	}
}

// TestFrameEncodeVectors builds every VALID frame of the vectors with `mxp frame encode`.
func TestFrameEncodeVectors(t *testing.T) {
	attr := regexp.MustCompile(`(\w+)=(\S+)`)
	count := 0
	for _, v := range readVectors(t) {
		if !v.valid {
			continue
		}
		a := map[string]string{}
		for _, m := range attr.FindAllStringSubmatch(v.attrs, -1) {
			a[m[1]] = m[2]
		}
		var payload []byte
		if h, ok := strings.CutPrefix(a["payload"], "hex:"); ok {
			payload, _ = hex.DecodeString(h)
		} else {
			var n int
			fmt.Sscanf(a["payload"], "P(%d)", &n)
			for i := range n {
				payload = append(payload, byte(i%251))
			}
		}
		file := filepath.Join(t.TempDir(), "payload")
		if err := os.WriteFile(file, payload, 0o600); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := run(t, nil, "frame", "encode", "--type", a["type"], "--flags", a["flags"],
			"--msg-id", a["msg_id"], "--trace-id", a["trace_id"], "--payload-file", file)
		if code != 0 || stdout != v.hex+"\n" {
			t.Fatalf("%s: exit %d, stderr %q\n got  %.80s\n want %.80s", a["type"], code, stderr, stdout, v.hex)
		}
		count++
	}
	if count < 15 {
		t.Fatalf("only %d VALID vectors", count)
	}
}

func TestFrameDecodeJSON(t *testing.T) {
	stdout, _, code := run(t, nil, "frame", "encode", "--type", "event", "--flags", "final", "--msg-id", "5", "--payload", `{"a":1}`)
	if code != 0 {
		t.Fatal("encode failed")
	}
	bad := strings.Replace(stdout, "3150584d", "3150584e", 1)
	stdout, _, code = run(t, []byte(stdout+bad+"0xZZ\n"), "frame", "decode", "--json")
	if code != 1 {
		t.Fatalf("exit %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines: %q", len(lines), stdout)
	}
	var ok, fail, notHex map[string]any
	for i, dst := range []*map[string]any{&ok, &fail, &notHex} {
		if err := json.Unmarshal([]byte(lines[i]), dst); err != nil {
			t.Fatalf("line %d %q: %v", i, lines[i], err)
		}
	}
	want := map[string]any{"ok": true, "type": "0x12", "type_name": "Event", "flags": "0x08", "flag_names": []any{"final"},
		"msg_id": "0x0000000000000005", "trace_id": "0x0000000000000000", "payload_len": 7.0, "frame_len": 47.0,
		"payload_hex": "7b2261223a317d", "payload_text": `{"a":1}`}
	for k, v := range want {
		if fmt.Sprint(ok[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, ok[k], v)
		}
	}
	if fail["ok"] != false || fail["kind"] != "InvalidMagic" || fail["fields"].(map[string]any)["found"] != float64(0x4e585031) {
		t.Errorf("error line %v", fail)
	}
	if notHex["kind"] != "InvalidHex" {
		t.Errorf("hex error line %v", notHex)
	}
}

func TestFrameRaw(t *testing.T) {
	frame, _, code := run(t, nil, "frame", "encode", "--type", "0x11", "--msg-id", "0xff", "--payload", "pong", "--raw")
	if code != 0 || len(frame) != 44 {
		t.Fatalf("raw encode: exit %d, %d bytes", code, len(frame))
	}
	stdout, _, code := run(t, []byte(frame+"trailing"), "frame", "decode", "--raw")
	want := "ok type=0x11 flags=0x00 msg_id=0x00000000000000ff trace_id=0x0000000000000000 payload_len=4\n"
	if code != 0 || stdout != want {
		t.Fatalf("raw decode: exit %d, %q", code, stdout)
	}
	stdout, _, code = run(t, []byte(frame[:30]), "frame", "decode", "--raw")
	if code != 1 || stdout != "err BufferTooSmall: buffer too small: need 40 bytes, got 30\n" {
		t.Fatalf("short raw frame: exit %d, %q", code, stdout)
	}
}

func TestFrameEncode(t *testing.T) {
	payloadFile := filepath.Join(t.TempDir(), "p")
	if err := os.WriteFile(payloadFile, []byte("file"), 0o600); err != nil {
		t.Fatal(err)
	}
	bigFile := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(bigFile, make([]byte, 16<<20+1), 0o600); err != nil {
		t.Fatal(err)
	}
	header := func(typ, flags, msg, trace string, n int) string {
		return "3150584d" + typ + flags + "0000" + msg + trace + fmt.Sprintf("%02x00000000000000", n)
	}
	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		prefix string // of stdout
		errHas string // in stderr
	}{
		{"names", []string{"--type", "AgentHeartbeat", "--flags", "requires_ack|final"}, "", 0,
			header("03", "0c", "0000000000000000", "0000000000000000", 0), ""},
		{"numbers", []string{"--type", "16", "--flags", "12", "--msg-id", "0x0102", "--trace-id", "010"}, "", 0,
			header("10", "0c", "0201000000000000", "0a00000000000000", 0), ""},
		{"text payload", []string{"--type", "call", "--payload", "hi"}, "", 0,
			header("10", "00", "0000000000000000", "0000000000000000", 2) + "6869", ""},
		{"hex payload", []string{"--type", "call", "--payload-hex", "0xBEEF"}, "", 0,
			header("10", "00", "0000000000000000", "0000000000000000", 2) + "beef", ""},
		{"file payload", []string{"--type", "call", "--payload-file", payloadFile}, "", 0,
			header("10", "00", "0000000000000000", "0000000000000000", 4) + "66696c65", ""},
		{"stdin payload", []string{"--type", "call", "--payload-file", "-"}, "stdin", 0,
			header("10", "00", "0000000000000000", "0000000000000000", 5) + "737464696e", ""},
		{"max ids", []string{"--type", "ack", "--msg-id", "18446744073709551615", "--trace-id", "0xffffffffffffffff"}, "", 0,
			header("f0", "00", "ffffffffffffffff", "ffffffffffffffff", 0), ""},
		{"no type", []string{"--payload", "x"}, "", 2, "", "--type is required"},
		{"bad type", []string{"--type", "0x13"}, "", 2, "", "unknown message type"},
		{"bad flags", []string{"--type", "call", "--flags", "0x10"}, "", 2, "", "undefined bits"},
		{"bad number", []string{"--type", "call", "--msg-id", "12ab"}, "", 2, "", "not a decimal or 0x-hex"},
		{"id too big", []string{"--type", "call", "--msg-id", "18446744073709551616"}, "", 2, "", "below 2^64"},
		{"two payloads", []string{"--type", "call", "--payload", "a", "--payload-hex", "00"}, "", 2, "", "give the payload once"},
		{"bad hex", []string{"--type", "call", "--payload-hex", "abc"}, "", 2, "", "--payload-hex"},
		{"missing file", []string{"--type", "call", "--payload-file", "/nonexistent/p"}, "", 1, "", "no such file"},
		{"too large", []string{"--type", "call", "--payload-file", bigFile}, "", 1, "", "is over 16777216 bytes"},
		{"argument", []string{"--type", "call", "extra"}, "", 2, "", "unexpected argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stdout, stderr, code := run(t, []byte(tt.stdin), append([]string{"frame", "encode"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tt.code, stderr)
			}
			if !strings.HasPrefix(stdout, tt.prefix) || (tt.code == 0 && !strings.HasSuffix(stdout, "\n")) {
				t.Errorf("stdout %q, want prefix %q", stdout, tt.prefix)
			}
			if !strings.Contains(stderr, tt.errHas) {
				t.Errorf("stderr %q does not contain %q", stderr, tt.errHas)
			}
			if tt.code == 0 {
				// What encode prints, decode accepts.
				if out, _, code := run(t, []byte(stdout), "frame", "decode"); code != 0 || !strings.HasPrefix(out, "ok ") {
					t.Errorf("decode of the encoded frame: exit %d, %q", code, out)
				}
			}
		})
	}
}

func TestFrameHelp(t *testing.T) {
	// A group with no command is a usage error naming its commands (issue 17).
	if _, stderr, code := run(t, nil, "frame"); code != 2 || !strings.Contains(stderr, "a command is required: decode, encode") {
		t.Errorf("frame: exit %d, %q", code, stderr)
	}
	for _, args := range [][]string{{"frame", "--help"}, {"frame", "decode", "--help"}, {"frame", "encode", "-h"}} {
		stdout, _, code := run(t, nil, args...)
		if code != 0 || !strings.Contains(stdout, "Usage:") {
			t.Errorf("%v: exit %d, %q", args, code, stdout)
		}
	}
	if _, _, code := run(t, nil, "frame", "decode", "extra"); code != 2 {
		t.Errorf("decode with an argument: exit %d, want 2", code)
	}
}
