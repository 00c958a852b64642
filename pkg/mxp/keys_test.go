package mxp

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
)

func FuzzParseKeys(f *testing.F) {
	k, _ := GeneratePrivateKey()
	f.Add(k.Reveal())
	f.Add(k.PublicKey().String())
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if p, err := ParsePublicKey(s); err == nil {
			if q, err := ParsePublicKey(p.String()); err != nil || q != p {
				t.Fatalf("public key %q does not round-trip", s)
			}
		}
		if k, err := ParsePrivateKey(s); err == nil {
			if q, err := ParsePrivateKey(k.Reveal()); err != nil || q != k {
				t.Fatalf("private key %q does not round-trip", s)
			}
		}
	})
}

// TestListenerNeverPrintsKey: a Listener kept the Options (the private key among them)
// in an unexported field, where fmt prints a key's raw bytes; it keeps only what it uses.
func TestListenerNeverPrintsKey(t *testing.T) {
	k, _ := GeneratePrivateKey()
	l, err := Listen(context.Background(), "127.0.0.1:0", Options{PrivateKey: k, Serve: Echo})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	forms := []string{base64.StdEncoding.EncodeToString(k[:]), hex.EncodeToString(k[:]),
		strings.ToUpper(hex.EncodeToString(k[:])), fmt.Sprint([32]byte(k)), fmt.Sprintf("%#v", [32]byte(k))}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%X", "%d"} {
		out := fmt.Sprintf(verb, l)
		for _, s := range forms {
			if strings.Contains(out, s) {
				t.Fatalf("%s of a Listener prints the private key: %s", verb, out)
			}
		}
	}
}
