package transport

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestKeysNeverPrinted is the regression test of issue 15 point 10: a private or
// pre-shared key formatted by any fmt verb, logged by slog (text and JSON handlers, as a
// value and inside a struct) or marshalled to JSON shows Redacted, never the key in base64
// or hex; public keys still print as base64.
func TestKeysNeverPrinted(t *testing.T) {
	k := mustKey(t)
	var psk PresharedKey
	copy(psk[:], bytes.Repeat([]byte{0xab}, KeySize))
	cfg := Config{PrivateKey: k, PresharedKey: psk}
	secrets := map[string][]string{
		"private": {base64.StdEncoding.EncodeToString(k[:]), hex.EncodeToString(k[:]), fmt.Sprint([KeySize]byte(k))},
		"psk":     {base64.StdEncoding.EncodeToString(psk[:]), hex.EncodeToString(psk[:]), fmt.Sprint([KeySize]byte(psk))},
	}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, k), fmt.Sprintf(verb, psk), fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg))
	}
	outs = append(outs, k.String(), psk.String(), fmt.Sprint(k), fmt.Sprintln(cfg))
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		lg := slog.New(h)
		lg.Info("key", "private", k, "psk", psk, "cfg", cfg)
		lg.Info("group", slog.Group("g", slog.Any("k", k)))
	}
	outs = append(outs, logs.String())
	js, err := json.Marshal(struct {
		K PrivateKey
		P PresharedKey
	}{k, psk})
	if err != nil {
		t.Fatalf("json: %v", err)
	}
	outs = append(outs, string(js))
	for _, out := range outs {
		for name, forms := range secrets {
			for _, s := range forms {
				if strings.Contains(out, s) {
					t.Fatalf("the %s key leaked: %s", name, out)
				}
			}
		}
	}
	for _, out := range []string{fmt.Sprint(k), fmt.Sprintf("%#v", k), string(js)} {
		if !strings.Contains(out, Redacted) {
			t.Errorf("%q does not say it is redacted", out)
		}
	}
	// The key file form still round-trips, and public keys print.
	if back, err := ParsePrivateKey(k.Reveal()); err != nil || back != k {
		t.Fatalf("Reveal does not round-trip: %v", err)
	}
	if pub := k.PublicKey(); fmt.Sprint(pub) != base64.StdEncoding.EncodeToString(pub[:]) {
		t.Fatalf("public key prints as %v", pub)
	}
}
