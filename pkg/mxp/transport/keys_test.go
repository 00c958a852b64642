package transport

import (
	"bytes"
	"context"
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
		"private": keyForms(k[:]),
		"psk":     keyForms(psk[:]),
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
	outs = append(outs, containersPrinted(t, k, psk)...)
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

// keyForms are the ways a key's bytes can show in printed text: base64, hex (both
// cases), fmt's decimal byte list and its Go-syntax byte list.
func keyForms(b []byte) []string {
	return []string{base64.StdEncoding.EncodeToString(b), hex.EncodeToString(b),
		strings.ToUpper(hex.EncodeToString(b)), fmt.Sprint([KeySize]byte(b)), fmt.Sprintf("%#v", [KeySize]byte(b))}
}

// containersPrinted prints, with every verb, the structs that hold the keys: the static
// identity, a Listener configured with them and a Conn dialled to it (fmt cannot call
// PrivateKey.String on an unexported field, so a key held there by value would print raw).
func containersPrinted(t *testing.T, k PrivateKey, psk PresharedKey) []string {
	t.Helper()
	ctx := context.Background()
	l, err := Listen(ctx, "127.0.0.1:0", Config{PrivateKey: k, PresharedKey: psk})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := Dial(ctx, l.Addr().String(), l.PublicKey(), Config{PrivateKey: k, PresharedKey: psk})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	id := newStaticIdentity(k)
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, id), fmt.Sprintf(verb, *id), fmt.Sprintf(verb, l),
			fmt.Sprintf(verb, c))
	}
	// Held in an application's unexported fields, under the verbs that print nested
	// pointers as addresses (the others print the target's fields as fmt reads them,
	// racing with the connection's goroutines: no application does that).
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		outs = append(outs, fmt.Sprintf(verb, wrapper{l, c}))
	}
	return outs
}

// wrapper holds a Listener and a Conn in unexported fields, as an application's struct
// would (fmt then cannot call their methods).
type wrapper struct {
	l *Listener
	c *Conn
}
