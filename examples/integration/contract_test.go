package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mxp-mesh/mesh/examples/internal/meshtest"
	"github.com/mxp-mesh/mesh/pkg/agent"
	"github.com/mxp-mesh/mesh/pkg/common/bus"
	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// TestRegistrationContract drives one table of agent names and capabilities through the
// three places that check a registration: the SDK (agent.New), the edge (a real edge
// answering an AgentRegister frame) and the registry (its real bus handler). All three
// must accept the same registrations and refuse the others with the same code, so nothing
// the SDK or the edge lets through is refused later by the registry (issue 16: "Echo" and
// "summarise:v2" passed the edge and the SDK and were refused by the registry; names were
// 256 bytes in one and 96 runes in the other).
//
// The edge runs on a bus of its own with no registry: an AgentRegister it accepts goes on
// to the registry's subject, where nothing answers, and comes back unreachable; one it
// refuses comes back with the code of its own check. The registry runs on another bus and
// is asked directly, with the same bytes.
func TestRegistrationContract(t *testing.T) {
	caps := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("c%0*d", size-1, i)
		}
		return out
	}
	tests := []struct {
		name  string
		caps  []string
		valid mxp.ErrorCode // "" when every check accepts it
	}{
		{"echo", []string{"echo"}, ""},
		{"Echo", []string{"Echo", "echo"}, ""},
		{"summariser", []string{"summarise:v2", "tool.word_count", "a/b", "x=1"}, ""},
		{"régie 7", []string{"résumé.fr"}, ""},
		{"名前", []string{"能力"}, ""},
		{"emoji 🚀", []string{"🚀"}, ""},
		{strings.Repeat("n", 97), nil, ""},             // over the registry's old 96 runes
		{strings.Repeat("n", mxp.MaxNameLen), nil, ""}, // exactly 256 bytes
		{strings.Repeat("é", mxp.MaxNameLen/2), nil, ""},
		{"many", caps(mxp.MaxCapabilities, 8), ""},
		{"long cap", []string{strings.Repeat("c", mxp.MaxCapabilityLen)}, ""},
		{"no caps", []string{}, ""},

		{"", nil, mxp.CodeInvalidName},
		{"   ", nil, mxp.CodeInvalidName},
		{strings.Repeat("n", mxp.MaxNameLen+1), nil, mxp.CodeInvalidName},
		{strings.Repeat("é", mxp.MaxNameLen/2+1), nil, mxp.CodeInvalidName}, // 129 runes, 258 bytes
		{"line\nbreak", nil, mxp.CodeInvalidName},
		{"nul\x00", nil, mxp.CodeInvalidName},
		{"del\x7f", nil, mxp.CodeInvalidName},
		{"c1\u0085", nil, mxp.CodeInvalidName},
		{"space cap", []string{"a b"}, mxp.CodeInvalidCapability},
		{"tab cap", []string{"a\tb"}, mxp.CodeInvalidCapability},
		{"nbsp cap", []string{"a\u00a0b"}, mxp.CodeInvalidCapability},
		{"empty cap", []string{""}, mxp.CodeInvalidCapability},
		{"long cap", []string{strings.Repeat("c", mxp.MaxCapabilityLen+1)}, mxp.CodeInvalidCapability},
		{"too many", caps(mxp.MaxCapabilities+1, 8), mxp.CodeTooManyCapabilities},
	}

	edgeConn := startLoneEdge(t)
	registryConn := startLoneRegistry(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for i, tc := range tests {
		id := mxp.AgentID{0: 0xc0, 1: byte(i >> 8), 2: byte(i), 6: 0x40, 8: 0x80}
		// The same bytes for the edge and the registry, built by hand: the SDK's encoder
		// would refuse the invalid ones before they left.
		body, err := json.Marshal(map[string]any{"id": id.String(), "name": tc.name, "capabilities": tc.caps,
			"address": "", "metadata": map[string]string{"version": "1.0.0"}})
		if err != nil {
			t.Fatal(err)
		}
		label := fmt.Sprintf("%.24q %d caps", tc.name, len(tc.caps))

		// The SDK.
		_, err = agent.New(agent.Config{ID: id.String(), Name: tc.name, Capabilities: tc.caps, Version: "1.0.0"})
		var sdk mxp.ErrorCode
		if err != nil {
			sdk = agent.CodeOf(err)
		}

		// The edge.
		var edgeCode mxp.ErrorCode
		_, err = edgeConn.Call(ctx, &mxp.Frame{Type: mxp.TypeAgentRegister, Payload: body})
		var re *mxp.RemoteError
		if !errors.As(err, &re) {
			t.Fatalf("%s: edge answered %v; want an Error (there is no registry behind it)", label, err)
		}
		if re.Code != mxp.CodeUnreachable {
			edgeCode = re.Code
		}

		// The registry, through its bus handler.
		var regCode mxp.ErrorCode
		reply, err := registryConn.RequestWithContext(ctx, bus.SubjectRegistryRegister, body)
		if err != nil {
			t.Fatalf("%s: registry: %v", label, err)
		}
		if rerr := bus.ReplyError(reply); rerr != nil {
			var be *bus.Error
			if !errors.As(rerr, &be) {
				t.Fatalf("%s: registry: %v", label, rerr)
			}
			regCode = be.Code
		}

		if sdk != tc.valid || edgeCode != tc.valid || regCode != tc.valid {
			t.Errorf("%s: SDK %q, edge %q, registry %q; want %q from all three (\"\": accepted)",
				label, string(sdk), string(edgeCode), string(regCode), string(tc.valid))
		}
	}
}

// startLoneEdge starts a mesh of the edge alone (nothing else on its bus) and returns a
// secure MXP connection to it.
func startLoneEdge(t *testing.T) *mxp.Conn {
	t.Helper()
	m := startLone(t, "edge")
	key, err := mxp.ParsePublicKey(m.EdgeKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := mxp.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := mxp.Dial(ctx, m.EdgeAddr, mxp.Options{PrivateKey: priv, ServerKey: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startLoneRegistry starts a mesh of the registry alone (memory store) and returns a
// client connection to its bus, once the registry serves.
func startLoneRegistry(t *testing.T) *nats.Conn {
	t.Helper()
	m := startLone(t, "registry")
	client, err := m.Mesh.Bus.NewConn("client")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(client.Close)
	return client
}

// startLone runs the mesh's list with the one target until the test ends, once it is
// ready.
func startLone(t *testing.T, target string) *meshtest.Mesh {
	t.Helper()
	m, err := meshtest.StartWith(t.TempDir(), meshtest.Options{Logger: quiet(), Targets: []string{target}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("%s: %v", target, err)
		}
	})
	return m
}
