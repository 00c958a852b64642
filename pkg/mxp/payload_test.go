package mxp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

var testAgent = AgentID{0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}

// The reference SDK's JSON, as it puts it on the wire.
func TestReferenceLifecycleJSON(t *testing.T) {
	reg, err := DecodeRegisterRequest([]byte(`{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","name":"weather",
		"capabilities":["weather.forecast","geo"],"address":"127.0.0.1:9000",
		"metadata":{"version":"1.2.0","description":"forecasts","tags":["demo","eu"]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := RegisterRequest{ID: testAgent, Name: "weather", Capabilities: []string{"weather.forecast", "geo"},
		Address:  netip.MustParseAddrPort("127.0.0.1:9000"),
		Metadata: AgentMetadata{Version: "1.2.0", Description: "forecasts", Tags: []string{"demo", "eu"}}}
	if !reflect.DeepEqual(reg, want) {
		t.Fatalf("got %+v\nwant %+v", reg, want)
	}
	// The string-map form of metadata.
	reg, err = DecodeRegisterRequest([]byte(`{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","name":"w","capabilities":[],
		"address":"[::1]:9000","metadata":{"version":"1","tags":"demo, eu","owner":"ops"}}`))
	if err != nil || !reflect.DeepEqual(reg.Metadata.Tags, []string{"demo", "eu"}) || reg.Address.Port() != 9000 {
		t.Fatalf("string tags: %+v, %v", reg.Metadata, err)
	}

	hb, err := DecodeHeartbeatResponse([]byte(`{"success":true,"needs_register":false,
		"agent_id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","timestamp":"2025-01-02T03:04:05.123456789Z"}`))
	if err != nil || !hb.Success || hb.AgentID != testAgent || hb.Timestamp.Nanosecond() != 123456789 {
		t.Fatalf("heartbeat response %+v, %v", hb, err)
	}
	e, err := DecodeErrorPayload([]byte(`{"error":"agent not found","code":"not_found"}`))
	if err != nil || e.Code != CodeNotFound || !errors.Is(e.Err(), CodeNotFound) {
		t.Fatalf("error payload %+v, %v", e, err)
	}
	failed, err := DecodeRegisterResponse([]byte(`{"success":false,"agent_id":"","message":"name taken"}`))
	if err != nil || failed.Success || !failed.AgentID.IsZero() || failed.Message != "name taken" {
		t.Fatalf("failed register response %+v, %v", failed, err)
	}
	d, err := DecodeDiscoverRequest([]byte(`{"capability":"geo"}`))
	if err != nil || !reflect.DeepEqual(d.Required(), []string{"geo"}) {
		t.Fatalf("reference discover %+v, %v", d, err)
	}
}

func TestJSONPayloadRoundTrip(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		p      Payload
		decode func([]byte) (any, error)
	}{
		{"register", &RegisterRequest{ID: testAgent, Name: "a", Capabilities: []string{"x"}, Metadata: AgentMetadata{Version: "1", Tags: []string{"t"}}},
			func(b []byte) (any, error) { p, err := DecodeRegisterRequest(b); return &p, err }},
		{"register response", &RegisterResponse{Success: true, AgentID: testAgent, Message: "ok"},
			func(b []byte) (any, error) { p, err := DecodeRegisterResponse(b); return &p, err }},
		{"register response with lease", &RegisterResponse{Success: true, AgentID: testAgent, Message: "ok", LeaseSeconds: 2, HeartbeatSeconds: 2.0 / 3},
			func(b []byte) (any, error) { p, err := DecodeRegisterResponse(b); return &p, err }},
		{"heartbeat", &HeartbeatRequest{AgentID: testAgent},
			func(b []byte) (any, error) { p, err := DecodeHeartbeatRequest(b); return &p, err }},
		{"heartbeat response", &HeartbeatResponse{Success: true, NeedsRegister: true, AgentID: testAgent, Timestamp: now, Message: "lease expired"},
			func(b []byte) (any, error) { p, err := DecodeHeartbeatResponse(b); return &p, err }},
		{"discover", &DiscoverRequest{Capabilities: []string{"a", "b"}, Name: "weather", NamePrefix: "we", Tag: "eu", Limit: 10},
			func(b []byte) (any, error) { p, err := DecodeDiscoverRequest(b); return &p, err }},
		{"discover accepting only", &DiscoverRequest{Capability: "a", AcceptingOnly: true},
			func(b []byte) (any, error) { p, err := DecodeDiscoverRequest(b); return &p, err }},
		{"discover response with lifecycle", &DiscoverResponse{Capability: "a", Count: 1, Agents: []AgentRecord{{ID: testAgent, Name: "w",
			Capabilities: []string{"a"}, Status: StatusOnline, Lifecycle: "suspended", Accepting: new(false), LastHeartbeat: now, RegisteredAt: now}}},
			func(b []byte) (any, error) { p, err := DecodeDiscoverResponse(b); return &p, err }},
		{"discover response", &DiscoverResponse{Capability: "a", Count: 1, Agents: []AgentRecord{{ID: testAgent, Name: "w", Version: "1",
			Capabilities: []string{"a"}, Address: netip.MustParseAddrPort("10.0.0.1:1"), Status: StatusOnline, LastHeartbeat: now, RegisteredAt: now}}},
			func(b []byte) (any, error) { p, err := DecodeDiscoverResponse(b); return &p, err }},
		{"error", &ErrorPayload{Error: "slow", Code: CodeTimeout},
			func(b []byte) (any, error) { p, err := DecodeErrorPayload(b); return &p, err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.p.AppendPayload([]byte("prefix:"))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(b), "prefix:") || !json.Valid(b[7:]) {
				t.Fatalf("encoding %q", b)
			}
			got, err := tt.decode(b[7:])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.p) {
				t.Fatalf("round trip:\n got  %+v\n want %+v", got, tt.p)
			}
		})
	}
}

func TestJSONPayloadRejects(t *testing.T) {
	id := testAgent.String()
	tests := []struct {
		name   string
		decode func([]byte) error
		in     string
		reason string
	}{
		{"register not json", wrap(DecodeRegisterRequest), `{"id":`, "malformed JSON"},
		{"register bad id", wrap(DecodeRegisterRequest), `{"id":"nope","name":"a"}`, "bad agent id"},
		{"register no id", wrap(DecodeRegisterRequest), `{"name":"a"}`, "missing id"},
		{"register null", wrap(DecodeRegisterRequest), `null`, "missing id"},
		{"register no name", wrap(DecodeRegisterRequest), `{"id":"` + id + `","name":"  "}`, "missing name"},
		{"register space in capability", wrap(DecodeRegisterRequest), `{"id":"` + id + `","name":"a","capabilities":["a b"]}`, "space or control"},
		{"register empty capability", wrap(DecodeRegisterRequest), `{"id":"` + id + `","name":"a","capabilities":[""]}`, "empty capability"},
		{"register long name", wrap(DecodeRegisterRequest), `{"id":"` + id + `","name":"` + strings.Repeat("n", MaxNameLen+1) + `"}`, "max 256"},
		{"register bad address", wrap(DecodeRegisterRequest), `{"id":"` + id + `","name":"a","address":"nowhere"}`, "malformed JSON"},
		{"register trailing data", wrap(DecodeRegisterRequest), `{"id":"` + id + `","name":"a"} x`, "malformed JSON"},
		{"heartbeat no id", wrap(DecodeHeartbeatRequest), `{}`, "missing agent_id"},
		{"heartbeat empty id", wrap(DecodeHeartbeatRequest), `{"agent_id":""}`, "missing agent_id"},
		{"heartbeat response no id", wrap(DecodeHeartbeatResponse), `{"success":true}`, "missing agent_id"},
		{"register response success without id", wrap(DecodeRegisterResponse), `{"success":true}`, "success without agent_id"},
		{"register response negative lease", wrap(DecodeRegisterResponse), `{"lease_seconds":-1}`, "negative lease_seconds"},
		{"register response negative interval", wrap(DecodeRegisterResponse), `{"heartbeat_interval_seconds":-1}`, "negative lease_seconds"},
		{"register response interval over lease", wrap(DecodeRegisterResponse), `{"lease_seconds":2,"heartbeat_interval_seconds":10}`, "not shorter than lease_seconds"},
		{"discover negative limit", wrap(DecodeDiscoverRequest), `{"limit":-1}`, "out of range"},
		{"discover limit too high", wrap(DecodeDiscoverRequest), `{"limit":1001}`, "out of range"},
		{"discover bad tag", wrap(DecodeDiscoverRequest), `{"tag":"a\nb"}`, "control"},
		{"discover count mismatch", wrap(DecodeDiscoverResponse), `{"capability":"","agents":[],"count":2}`, "count 2 but 0 agents"},
		{"error no code", wrap(DecodeErrorPayload), `{"error":"x"}`, "missing code"},
		{"error empty", wrap(DecodeErrorPayload), ``, "malformed JSON"},
	}
	// The registry's payloads name the field at fault with a code of its own.
	specific := map[string]ErrorCode{
		"register bad id": CodeInvalidAgentID, "register no id": CodeInvalidAgentID, "register null": CodeInvalidAgentID,
		"register no name": CodeInvalidName, "register long name": CodeInvalidName,
		"register space in capability": CodeInvalidCapability, "register empty capability": CodeInvalidCapability,
		"heartbeat no id": CodeInvalidAgentID, "heartbeat empty id": CodeInvalidAgentID,
		"discover negative limit": CodeInvalidQuery, "discover limit too high": CodeInvalidQuery, "discover bad tag": CodeInvalidQuery,
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode([]byte(tt.in))
			var pe *PayloadError
			if !errors.As(err, &pe) || !errors.Is(err, ErrInvalidPayload) {
				t.Fatalf("err = %v, want a *PayloadError", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("err %q does not say %q", err, tt.reason)
			}
			code, ok := specific[tt.name]
			if !ok {
				code = CodeInvalidPayload
			}
			if ErrorKind(err) != "InvalidPayload" || ErrorCodeFor(err) != code {
				t.Errorf("kind %q code %q, want %q", ErrorKind(err), string(ErrorCodeFor(err)), string(code))
			}
		})
	}
	// Encoding refuses what decoding would reject.
	if _, err := (&RegisterRequest{Name: "a"}).AppendPayload(nil); !errors.Is(err, ErrInvalidPayload) {
		t.Errorf("encoding a register without id: %v", err)
	}
}

func wrap[T any](f func([]byte) (T, error)) func([]byte) error {
	return func(b []byte) error { _, err := f(b); return err }
}

func TestBinaryPayloads(t *testing.T) {
	sid := StreamID(testAgent)
	sid[0] = 1
	tests := []struct {
		name   string
		p      Payload
		wire   string // hex of the expected encoding
		decode func([]byte) (any, error)
	}{
		{"call", &CallPayload{Target: ServiceInference, TimeoutSeconds: 30, Data: []byte("hi")},
			"000000000000000000000000000000f2" + "1e000000" + "6869",
			func(b []byte) (any, error) { p, err := DecodeCall(b); return &p, err }},
		{"call without data", &CallPayload{Target: testAgent, Data: []byte{}},
			testAgent.hex() + "00000000",
			func(b []byte) (any, error) { p, err := DecodeCall(b); return &p, err }},
		{"stream open", &StreamOpenPayload{StreamID: sid, Target: ServiceTools, Kind: StreamKindText, Data: []byte("{}")},
			AgentID(sid).hex() + "000000000000000000000000000000f3" + "01" + "7b7d",
			func(b []byte) (any, error) { p, err := DecodeStreamOpen(b); return &p, err }},
		{"stream chunk", &StreamChunkPayload{StreamID: sid, Data: []byte("tok")},
			AgentID(sid).hex() + "746f6b",
			func(b []byte) (any, error) { p, err := DecodeStreamChunk(b); return &p, err }},
		{"stream close clean", &StreamClosePayload{StreamID: sid},
			AgentID(sid).hex(),
			func(b []byte) (any, error) { p, err := DecodeStreamClose(b); return &p, err }},
		{"stream close error", &StreamClosePayload{StreamID: sid, Error: &ErrorPayload{Error: "e", Code: CodeInternal}},
			AgentID(sid).hex() + fmt.Sprintf("%x", `{"error":"e","code":"internal"}`),
			func(b []byte) (any, error) { p, err := DecodeStreamClose(b); return &p, err }},
		{"event", &EventPayload{Topic: "build.done", Data: []byte{1}},
			"0a" + fmt.Sprintf("%x", "build.done") + "01",
			func(b []byte) (any, error) { p, err := DecodeEvent(b); return &p, err }},
		{"ack", &AckPayload{MessageID: 0x0123456789abcdef},
			"efcdab8967452301",
			func(b []byte) (any, error) { p, err := DecodeAck(b); return &p, err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.p.AppendPayload(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := fmt.Sprintf("%x", b); got != tt.wire {
				t.Fatalf("wire\n got  %s\n want %s", got, tt.wire)
			}
			got, err := tt.decode(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.p) {
				t.Fatalf("round trip:\n got  %+v\n want %+v", got, tt.p)
			}
		})
	}
}

func (id AgentID) hex() string { return fmt.Sprintf("%x", id[:]) }

func TestBinaryPayloadZeroCopy(t *testing.T) {
	b, _ := (&CallPayload{Target: testAgent, Data: []byte("data")}).AppendPayload(nil)
	p, err := DecodeCall(b)
	if err != nil || &p.Data[0] != &b[CallHeaderSize] || cap(p.Data) != len(p.Data) {
		t.Fatal("Call data is not a view of the input")
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = DecodeCall(b) }); n != 0 {
		t.Errorf("DecodeCall allocates %v times", n)
	}
}

func TestBinaryPayloadRejects(t *testing.T) {
	zero := make([]byte, 40)
	valid := append(testAgent[:], make([]byte, 24)...)
	tests := []struct {
		name   string
		decode func([]byte) error
		in     []byte
		reason string
	}{
		{"call short", wrap(DecodeCall), valid[:19], "19 bytes, need at least 20"},
		{"call zero target", wrap(DecodeCall), zero, "missing target"},
		{"stream open short", wrap(DecodeStreamOpen), valid[:32], "need at least 33"},
		{"stream open zero id", wrap(DecodeStreamOpen), zero, "missing stream id"},
		{"stream open zero target", wrap(DecodeStreamOpen), append(testAgent[:], zero...), "missing target"},
		{"stream chunk short", wrap(DecodeStreamChunk), valid[:15], "need at least 16"},
		{"stream chunk zero id", wrap(DecodeStreamChunk), zero, "missing stream id"},
		{"stream close bad error", wrap(DecodeStreamClose), append(testAgent[:], "{oops"...), "bad error"},
		{"stream close error without code", wrap(DecodeStreamClose), append(testAgent[:], `{"error":"x"}`...), "missing code"},
		{"event empty", wrap(DecodeEvent), nil, "empty payload"},
		{"event topic cut", wrap(DecodeEvent), []byte{5, 'a', 'b'}, "topic of 5 bytes but only 2 follow"},
		{"event empty topic", wrap(DecodeEvent), []byte{0}, "empty topic"},
		{"event bad topic", wrap(DecodeEvent), []byte{3, 'a', '*', 'b'}, "not allowed"},
		{"event empty token", wrap(DecodeEvent), []byte{3, 'a', '.', '.'}, "empty token"},
		{"ack short", wrap(DecodeAck), []byte{1, 2, 3}, "3 bytes, want 8"},
		{"ack long", wrap(DecodeAck), make([]byte, 9), "9 bytes, want 8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.decode(tt.in)
			if !errors.Is(err, ErrInvalidPayload) || !strings.Contains(err.Error(), tt.reason) {
				t.Fatalf("err = %v, want an invalid payload error saying %q", err, tt.reason)
			}
		})
	}
	for _, p := range []Payload{&CallPayload{}, &StreamOpenPayload{Target: testAgent}, &StreamChunkPayload{},
		&StreamClosePayload{}, &EventPayload{Topic: "no spaces"}, &StreamClosePayload{StreamID: StreamID(testAgent), Error: &ErrorPayload{}}} {
		if out, err := p.AppendPayload([]byte("x")); !errors.Is(err, ErrInvalidPayload) || !bytes.Equal(out, []byte("x")) {
			t.Errorf("%T: encoding an invalid payload: %v, %q", p, err, out)
		}
	}
	if err := CheckTopic(strings.Repeat("a", 256)); err == nil {
		t.Error("256-byte topic accepted")
	}
}

func TestErrorCodeFor(t *testing.T) {
	_, _, frameErr := Decode([]byte{1, 2, 3})
	_, _, tooLarge := Decode(append([]byte{0x31, 0x50, 0x58, 0x4d, 0x10, 0, 0, 0}, append(make([]byte, 16), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0)...))
	_, payloadErr := DecodeAck(nil)
	tests := []struct {
		err  error
		want ErrorCode
	}{
		{frameErr, CodeInvalidFrame},
		{fmt.Errorf("wrapped: %w", frameErr), CodeInvalidFrame},
		{tooLarge, CodeTooLarge},
		{payloadErr, CodeInvalidPayload},
		{&RemoteError{Code: CodeForbidden}, CodeForbidden},
		{fmt.Errorf("x: %w", CodeRateLimited), CodeRateLimited},
		{context.DeadlineExceeded, CodeTimeout},
		{context.Canceled, CodeUnavailable},
		{errors.New("disk on fire"), CodeInternal},
	}
	for _, tt := range tests {
		if got := ErrorCodeFor(tt.err); got != tt.want {
			t.Errorf("ErrorCodeFor(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
	p := NewErrorPayload(tooLarge)
	if p.Code != CodeTooLarge || !strings.HasPrefix(p.Error, "payload too large") {
		t.Errorf("NewErrorPayload = %+v", p)
	}
	codes := []ErrorCode{CodeInvalidFrame, CodeInvalidPayload, CodeUnreachable, CodeTimeout, CodeRateLimited,
		CodeTooLarge, CodeForbidden, CodeInternal, CodeUnavailable, CodeNotFound}
	for _, c := range codes {
		if err := (&ErrorPayload{Error: "x", Code: c}).Validate(); err != nil {
			t.Errorf("standard code %q invalid: %v", c, err)
		}
	}
}

// TestAgentRecordLifecycleOptional: the lifecycle fields are new to the reference
// payloads, so records without them decode (unknown) and encode without them.
func TestAgentRecordLifecycleOptional(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		lifecycle string
		accepting *bool
	}{
		{"reference record", `{"count":1,"agents":[{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","name":"w","status":"Online"}]}`, "", nil},
		{"suspended", `{"count":1,"agents":[{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","lifecycle":"suspended","accepting":false}]}`, "suspended", new(false)},
		{"active", `{"count":1,"agents":[{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","lifecycle":"active","accepting":true}]}`, "active", new(true)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := DecodeDiscoverResponse([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			rec := d.Agents[0]
			if rec.Lifecycle != tt.lifecycle || !reflect.DeepEqual(rec.Accepting, tt.accepting) {
				t.Fatalf("decoded lifecycle %q accepting %v", rec.Lifecycle, rec.Accepting)
			}
			b, _ := json.Marshal(rec)
			if has := strings.Contains(string(b), `"accepting"`); has != (tt.accepting != nil) {
				t.Fatalf("encoded %s", b)
			}
		})
	}
	b, _ := (&DiscoverRequest{Capability: "a"}).AppendPayload(nil)
	if strings.Contains(string(b), "accepting_only") {
		t.Fatalf("accepting_only must be omitted when false: %s", b)
	}
}

// TestRegisterResponseHeartbeatInterval: the interval the registry asks for, 0 when it
// does not say, and never an overflowed duration.
func TestRegisterResponseHeartbeatInterval(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{`{"success":false,"agent_id":"","message":"x"}`, 0},
		{`{"success":false,"agent_id":"","message":"x","lease_seconds":2,"heartbeat_interval_seconds":0.5}`, 500 * time.Millisecond},
		{`{"success":false,"agent_id":"","message":"x","heartbeat_interval_seconds":1e300}`, 365 * 24 * time.Hour},
	} {
		r, err := DecodeRegisterResponse([]byte(tc.in))
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := r.HeartbeatInterval(); got != tc.want {
			t.Errorf("%s: interval %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestRecordMetadataLazy: a decoded record keeps its metadata undecoded and re-encodes
// it as received; Decode parses it then (a bad object fails there, typed, not the
// discovery answer); metadata set by the registry encodes as AgentMetadata does; the
// states and statuses are read without allocating a string for the known values.
func TestRecordMetadataLazy(t *testing.T) {
	const md = `{"description":"d","owner":"me","tags":["a"],"version":"1"}`
	in := `{"count":2,"agents":[` +
		`{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","state":"online","status":"Online","metadata":` + md + `},` +
		`{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c9","state":"asleep","status":"Busy","metadata":{"version":1}}]}`
	d, err := DecodeDiscoverResponse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	good, bad := d.Agents[0], d.Agents[1]
	if good.State != StateOnline || good.Status != StatusOnline || bad.State != "asleep" || bad.Status != "Busy" {
		t.Fatalf("states %q %q, statuses %q %q", good.State, bad.State, good.Status, bad.Status)
	}
	m, err := good.Metadata.Decode()
	if err != nil || m.Version != "1" || m.Description != "d" || !reflect.DeepEqual(m.Tags, []string{"a"}) || m.Extra["owner"] != "me" {
		t.Fatalf("Decode = %+v, %v", m, err)
	}
	var pe *PayloadError
	if _, err := bad.Metadata.Decode(); !errors.As(err, &pe) || pe.Code != CodeInvalidMetadata {
		t.Fatalf("Decode of bad metadata: %v", err)
	}
	b, _ := json.Marshal(good)
	if !strings.Contains(string(b), `"metadata":`+md) {
		t.Fatalf("re-encoded %s", b)
	}
	set := AgentRecord{ID: testAgent, Metadata: MetadataOf(&m)}
	b, _ = json.Marshal(set)
	if !strings.Contains(string(b), `"metadata":`+md) {
		t.Fatalf("set metadata encoded %s", b)
	}
	if back, _ := set.Metadata.Decode(); !reflect.DeepEqual(back, m) {
		t.Fatalf("Decode of set metadata %+v", back)
	}
	b, _ = json.Marshal(AgentRecord{ID: testAgent})
	if strings.Contains(string(b), "metadata") {
		t.Fatalf("zero metadata encoded: %s", b)
	}
	if _, err := DecodeDiscoverResponse([]byte(`{"count":1,"agents":[{"id":"6ba7b810-9dad-11d1-80b4-00c04fd430c8","metadata":[1]}]}`)); !errors.As(err, &pe) || pe.Code != CodeInvalidMetadata {
		t.Fatalf("metadata that is not an object: %v", err)
	}
	var st AgentState
	var ss AgentStatus
	expiring, degraded := []byte(`"expiring"`), []byte(`"Degraded"`)
	if n := testing.AllocsPerRun(10, func() {
		_ = st.UnmarshalJSON(expiring)
		_ = ss.UnmarshalJSON(degraded)
	}); n != 0 || st != StateExpiring || ss != StatusDegraded {
		t.Fatalf("known state and status: %v allocs, %q %q", n, st, ss)
	}
}
