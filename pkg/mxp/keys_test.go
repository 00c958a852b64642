package mxp

import "testing"

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
