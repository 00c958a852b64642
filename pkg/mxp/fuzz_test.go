package mxp

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"reflect"
	"testing"
	"time"
)

// exact returns a copy of b with cap == len, so that any read past the end panics.
func exact(b []byte) []byte { return append(make([]byte, 0, len(b)), b...) }

func addVectorSeeds(f *testing.F) {
	for _, v := range loadVectors(f) {
		if len(v.wire) < 4096 {
			f.Add(v.wire)
		}
	}
}

// FuzzDecode: Decode never panics or reads past its input; what it accepts re-encodes to
// the same bytes, and what it rejects has a kind.
func FuzzDecode(f *testing.F) {
	addVectorSeeds(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		b := exact(in)
		fr, n, err := Decode(b)
		if err != nil {
			if ErrorKind(err) == "" || n != 0 {
				t.Fatalf("error without kind or with n=%d: %v", n, err)
			}
			return
		}
		if n < FrameOverhead || n > len(b) {
			t.Fatalf("n = %d of %d", n, len(b))
		}
		again, err := AppendFrame(nil, &fr)
		if err != nil {
			t.Fatalf("decoded frame does not encode: %v", err)
		}
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoding differs:\n in  %x\n out %x", b[:n], again)
		}
	})
}

// FuzzFrameRoundTrip: encode then decode returns the same frame, or both refuse it.
func FuzzFrameRoundTrip(f *testing.F) {
	f.Add(uint8(0x10), uint8(0x04), uint64(1), uint64(2), []byte("payload"))
	f.Add(uint8(0x00), uint8(0x00), uint64(0), uint64(0), []byte{})
	f.Add(uint8(0xf1), uint8(0x1f), ^uint64(0), ^uint64(0), []byte{0})
	f.Fuzz(func(t *testing.T, typ, flags uint8, msgID, traceID uint64, payload []byte) {
		fr := Frame{Type: MessageType(typ), Flags: Flags(flags), MessageID: msgID, TraceID: traceID, Payload: payload}
		wire, err := AppendFrame(nil, &fr)
		valid := fr.Type.Valid() && fr.Flags.Valid()
		if (err == nil) != valid {
			t.Fatalf("AppendFrame(%+v) err = %v, valid = %v", fr, err, valid)
		}
		if err != nil {
			return
		}
		got, n, err := Decode(exact(wire))
		if err != nil || n != len(wire) {
			t.Fatalf("Decode: n=%d err=%v", n, err)
		}
		if got.Type != fr.Type || got.Flags != fr.Flags || got.MessageID != msgID || got.TraceID != traceID || !bytes.Equal(got.Payload, payload) {
			t.Fatalf("round trip: %+v != %+v", got, fr)
		}
	})
}

// FuzzReader: the stream Reader agrees with Decode on every input: it returns the same
// frames, in order, and fails where Decode fails, with Decode's kind. The one difference is
// by design: where Decode lacks bytes (BufferTooSmall), the Reader, which checks a header
// as soon as it has one, may report the header's fault or a truncated stream.
func FuzzReader(f *testing.F) {
	addVectorSeeds(f)
	two, _ := AppendFrame(nil, &Frame{Type: TypeCall, Payload: []byte("a")})
	two, _ = AppendFrame(two, &Frame{Type: TypeAck})
	f.Add(two)
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		rest := exact(in)
		for {
			got, err := r.ReadFrame()
			want, n, derr := Decode(rest)
			if err != nil {
				if derr == nil {
					t.Fatalf("Reader failed (%v) where Decode succeeds", err)
				}
				if dk := ErrorKind(derr); dk != "BufferTooSmall" && ErrorKind(err) != dk {
					t.Fatalf("Reader error %v, Decode kind %s", err, dk)
				}
				return
			}
			if derr != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("Reader %+v, Decode %+v (%v)", got, want, derr)
			}
			rest = rest[n:]
		}
	})
}

// fuzzPayload checks one binary payload parser: no panic, no read past the input, and an
// accepted payload re-encodes to exactly the input.
func fuzzPayload[T any, PT interface {
	*T
	Payload
}](f *testing.F, decode func([]byte) (T, error), seeds ...PT) {
	for _, s := range seeds {
		b, err := s.AppendPayload(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, in []byte) {
		p, err := decode(exact(in))
		if err != nil {
			if !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		out, err := PT(&p).AppendPayload(nil)
		if err != nil {
			t.Fatalf("decoded payload does not encode: %v", err)
		}
		if !bytes.Equal(out, in) {
			// Only StreamClose's JSON part may be re-encoded differently; it must still
			// decode to the same value.
			again, err := decode(out)
			if err != nil || !reflect.DeepEqual(again, p) {
				t.Fatalf("re-encoding differs:\n in  %x\n out %x", in, out)
			}
		}
	})
}

func FuzzCallPayload(f *testing.F) {
	fuzzPayload(f, DecodeCall, &CallPayload{Target: ServiceInference, TimeoutSeconds: 5, Data: []byte("x")})
}

func FuzzStreamOpenPayload(f *testing.F) {
	fuzzPayload(f, DecodeStreamOpen, &StreamOpenPayload{StreamID: StreamID(testAgent), Target: ServiceTools, Kind: 2})
}

func FuzzStreamChunkPayload(f *testing.F) {
	fuzzPayload(f, DecodeStreamChunk, &StreamChunkPayload{StreamID: StreamID(testAgent), Data: []byte("tok")})
}

func FuzzStreamClosePayload(f *testing.F) {
	fuzzPayload(f, DecodeStreamClose, &StreamClosePayload{StreamID: StreamID(testAgent)},
		&StreamClosePayload{StreamID: StreamID(testAgent), Error: &ErrorPayload{Error: "x", Code: CodeTimeout}})
}

func FuzzEventPayload(f *testing.F) {
	fuzzPayload(f, DecodeEvent, &EventPayload{Topic: "a.b-c_d", Data: []byte("data")})
}

func FuzzAckPayload(f *testing.F) {
	fuzzPayload(f, DecodeAck, &AckPayload{MessageID: 42})
}

// FuzzJSONPayloads feeds every JSON payload parser: no panic, typed errors, and an
// accepted payload re-encodes to JSON that decodes to the same value.
func FuzzJSONPayloads(f *testing.F) {
	for _, s := range []string{
		`{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","name":"w","capabilities":["a"],"address":"127.0.0.1:1","metadata":{"version":"1","tags":"a,b"}}`,
		`{"success":true,"agent_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","message":"ok"}`,
		`{"success":true,"agent_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","message":"ok","lease_seconds":2,"heartbeat_interval_seconds":0.6666666666666666}`,
		`{"agent_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8"}`,
		`{"success":true,"needs_register":true,"agent_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","timestamp":"2025-01-01T00:00:00Z"}`,
		`{"capabilities":["a"],"capability":"b","name_prefix":"x","tag":"t","limit":3}`,
		`{"name":"echo","capabilities":["a"],"limit":1000}`,
		`{"capability":"a","agents":[],"count":0}`,
		`{"error":"e","code":"timeout"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		checkJSON(t, in, DecodeRegisterRequest)
		checkJSON(t, in, DecodeRegisterResponse)
		if r, err := DecodeRegisterResponse(exact(in)); err == nil && (r.HeartbeatInterval() < 0 || r.HeartbeatInterval() > 366*24*time.Hour) {
			t.Fatalf("heartbeat interval %v from %s", r.HeartbeatInterval(), in)
		}
		checkJSON(t, in, DecodeHeartbeatRequest)
		checkJSON(t, in, DecodeHeartbeatResponse)
		checkJSON(t, in, DecodeDiscoverRequest)
		checkJSON(t, in, DecodeDiscoverResponse)
		checkJSON(t, in, DecodeErrorPayload)
	})
}

func checkJSON[T any, PT interface {
	*T
	Payload
}](t *testing.T, in []byte, decode func([]byte) (T, error)) {
	p, err := decode(exact(in))
	if err != nil {
		if !errors.Is(err, ErrInvalidPayload) {
			t.Fatalf("%T: untyped error %v", p, err)
		}
		return
	}
	out, err := PT(&p).AppendPayload(nil)
	if err != nil {
		t.Fatalf("%T: decoded payload does not encode: %v", p, err)
	}
	again, err := decode(out)
	if err != nil {
		t.Fatalf("%T: re-encoded payload %s does not decode: %v", p, out, err)
	}
	a, _ := json.Marshal(again)
	b, _ := json.Marshal(p)
	if !bytes.Equal(a, b) {
		t.Fatalf("%T: round trip changed the payload:\n %s\n %s", p, b, a)
	}
}

// FuzzParseFlags and FuzzParseMessageType: the command-line parsers accept only what
// prints back to an equal value.
func FuzzParseFlags(f *testing.F) {
	for _, s := range []string{"requires_ack,final", "0x0c", "12", "FINAL|compressed", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fl, err := ParseFlags(s)
		if err != nil {
			return
		}
		if !fl.Valid() {
			t.Fatalf("ParseFlags(%q) = %#x with undefined bits", s, uint8(fl))
		}
		back, err := ParseFlags(fl.String())
		if err != nil || back != fl {
			t.Fatalf("ParseFlags(%q) = %v; String %q parses to %v, %v", s, fl, fl.String(), back, err)
		}
	})
}

func FuzzParseMessageType(f *testing.F) {
	for _, s := range []string{"call", "0x10", "agent_register", "16", "Error"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mt, err := ParseMessageType(s)
		if err != nil {
			return
		}
		if !mt.Valid() {
			t.Fatalf("ParseMessageType(%q) = invalid %#x", s, uint8(mt))
		}
		if back, err := ParseMessageType(mt.String()); err != nil || back != mt {
			t.Fatalf("%q -> %v -> %v, %v", s, mt, back, err)
		}
	})
}

// FuzzMetadataPaths: for an object of only version, description and tags, the struct
// path (decodeKnown) and the map path (decodeMap) of AgentMetadata decode the same value
// or both fail, and metadataKeysKnown never calls an object with another key known.
func FuzzMetadataPaths(f *testing.F) {
	f.Add([]byte(`{"version":"1","description":"d","tags":["a","b"]}`))
	f.Add([]byte(`{"version":"1","tags":"a, b"}`))
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":"1","owner":"me"}`))
	f.Add([]byte(`{"vers\u0069on":"1"}`))
	f.Add([]byte(`{"tags":[{"x":1}],"version":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var raw map[string]json.RawMessage
		if json.Unmarshal(b, &raw) != nil {
			return // UnmarshalJSON is only called with a valid JSON value; objects only here
		}
		if !metadataKeysKnown(b) {
			return
		}
		for k := range raw {
			if k != "version" && k != "description" && k != "tags" {
				t.Fatalf("metadataKeysKnown(%s) with key %q", b, k)
			}
		}
		var fast, slow AgentMetadata
		ef, es := fast.decodeKnown(b), slow.decodeMap(b)
		if (ef == nil) != (es == nil) {
			t.Fatalf("%s: struct path %v, map path %v", b, ef, es)
		}
		if ef == nil && !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%s: struct path %+v, map path %+v", b, fast, slow)
		}
	})
}

// FuzzAppendJSON: RegisterRequest.AppendPayload, written by hand, writes the bytes
// json.Marshal writes for the same request (any text in any field, Extra keys, zoned
// addresses), and a valid request's payload decodes to the request.
func FuzzAppendJSON(f *testing.F) {
	f.Add("weather", "geo", "1.2.0", "forecasts", "demo", "", "", "127.0.0.1:9000")
	f.Add("w<&>\"", "a.b", "v\u2028", "d\x01\\", "t", "owner", "me\xff", "[fe80::1%eth0]:80")
	f.Add("é", "x", "", "", "", "k", "", "")
	f.Fuzz(func(t *testing.T, name, capability, version, desc, tag, extraKey, extraVal, addr string) {
		req := RegisterRequest{ID: AgentID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, Name: name,
			Capabilities: []string{capability}, Metadata: AgentMetadata{Version: version, Description: desc}}
		if tag != "" {
			req.Metadata.Tags = []string{tag}
		}
		if extraKey != "" {
			req.Metadata.Extra = map[string]string{extraKey: extraVal}
		}
		req.Address, _ = netip.ParseAddrPort(addr)
		got, err := req.AppendPayload([]byte("prefix"))
		if err != nil {
			if !bytes.Equal(got, []byte("prefix")) {
				t.Fatalf("a refused request appended %q", got)
			}
			return
		}
		want, err := json.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != "prefix"+string(want) {
			t.Fatalf("AppendPayload %s\njson.Marshal  %s", got[len("prefix"):], want)
		}
		back, err := DecodeRegisterRequest(got[len("prefix"):])
		if err != nil {
			t.Fatalf("%s does not decode: %v", want, err)
		}
		if back.Name != req.Name || back.Address != req.Address || back.Metadata.Version != req.Metadata.Version {
			t.Fatalf("round trip %+v -> %+v", req, back)
		}
	})
}
