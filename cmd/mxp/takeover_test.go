package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mxp-mesh/mesh/pkg/mxp"
	"github.com/mxp-mesh/mesh/pkg/mxp/transport"
)

// codeConflict is mxp.CodeConflict, spelled so that this test also builds on the code
// from before it, where it fails.
const codeConflict = mxp.ErrorCode("conflict")

// serveAs answers every Call delivered on c with reply.
func serveAs(c *mxp.Conn, reply string) {
	go func() {
		for f := range c.Inbound() {
			if f.Type == mxp.TypeCall {
				_ = c.Respond(context.Background(), f, []byte(reply))
			}
		}
	}()
}

// TestNameTakeoverRefused is issue 15's point 2 on a real mesh (`mxp dev`: edge with its
// plaintext listener, registry on the memory store): an agent named "victim" is
// registered over the secure transport; a plaintext peer, then a secure peer with another
// key, register the same name with an id that sorts first. Both get conflict, and
// `--to victim` keeps reaching the owner. The owner's own second agent of the name (a
// replica, same key) is accepted.
func TestNameTakeoverRefused(t *testing.T) {
	info, ctx, dialKey, register := victimMesh(t)
	ownerKey, _ := transport.GeneratePrivateKey()
	owner := dialKey(ownerKey)
	if err := register(owner, "ffffffff-0000-4000-8000-000000000001"); err != nil {
		t.Fatal(err)
	}
	serveAs(owner, "owner")

	plain, err := mxp.DialPlaintext(ctx, info.CompatAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	serveAs(plain, "stolen")
	if err := register(plain, "00000000-0000-4000-8000-000000000001"); !errors.Is(err, codeConflict) {
		t.Fatalf("plaintext registration of a held name: err = %v, want conflict", err)
	}
	otherKey, _ := transport.GeneratePrivateKey()
	other := dialKey(otherKey)
	serveAs(other, "stolen")
	if err := register(other, "00000000-0000-4000-8000-000000000002"); !errors.Is(err, codeConflict) {
		t.Fatalf("registration of a held name by another key: err = %v, want conflict", err)
	}
	replica := dialKey(ownerKey)
	serveAs(replica, "owner")
	if err := register(replica, "00000000-0000-4000-8000-000000000003"); err != nil {
		t.Fatalf("the owner's replica: %v", err)
	}

	caller := dialKey(mustKey(t))
	for range 3 {
		id, err := resolveTarget(ctx, caller, "victim")
		if err != nil {
			t.Fatal(err)
		}
		got, err := caller.CallAgent(ctx, id, []byte("secret"), 5*time.Second)
		if err != nil || string(got) != "owner" {
			t.Fatalf("--to victim reached %q (%v), want the owner", got, err)
		}
	}
}

func mustKey(t *testing.T) transport.PrivateKey {
	k, err := transport.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustID(s string) mxp.AgentID {
	id, err := mxp.ParseAgentID(s)
	if err != nil {
		panic(err)
	}
	return id
}

// TestNameSquatAfterOwnerGone is the review's squat on a real mesh: the owner's agent goes
// away (its connection closes; the edge deregisters it at once, as dead-peer detection
// does for a killed one). While the owner's claim lasts (name_claim_grace, default the
// lease), a plaintext peer and another key get conflict on the name; the owner, back
// with its key and a new id, gets it, and `--to victim` reaches it.
func TestNameSquatAfterOwnerGone(t *testing.T) {
	info, ctx, dialKey, register := victimMesh(t)
	ownerKey := mustKey(t)
	owner := dialKey(ownerKey)
	if err := register(owner, "ffffffff-0000-4000-8000-000000000001"); err != nil {
		t.Fatal(err)
	}
	owner.Close()
	caller := dialKey(mustKey(t))
	for { // the edge deregisters the closed connection's agent: wait until it has
		found, err := caller.Discover(ctx, mxp.DiscoverRequest{NamePrefix: "victim"})
		if err != nil {
			t.Fatal(err)
		}
		if found.Count == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the owner's agent was never deregistered")
		}
	}
	plain, err := mxp.DialPlaintext(ctx, info.CompatAddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plain.Close() })
	if err := register(plain, "00000000-0000-4000-8000-000000000001"); !errors.Is(err, codeConflict) {
		t.Fatalf("plaintext squat on a name just left: err = %v, want conflict", err)
	}
	if err := register(dialKey(mustKey(t)), "00000000-0000-4000-8000-000000000002"); !errors.Is(err, codeConflict) {
		t.Fatalf("another key's squat on a name just left: err = %v, want conflict", err)
	}
	back := dialKey(ownerKey)
	serveAs(back, "owner")
	if err := register(back, "ffffffff-0000-4000-8000-000000000002"); err != nil {
		t.Fatalf("the owner back: %v", err)
	}
	id, err := resolveTarget(ctx, caller, "victim")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := caller.CallAgent(ctx, id, []byte("hi"), 5*time.Second); err != nil || string(got) != "owner" {
		t.Fatalf("--to victim reached %q (%v), want the owner", got, err)
	}
}

// victimMesh starts `mxp dev` for a name-takeover test and gives its edge, a context for the test's requests, a dial with a given key (closed at cleanup), and
// a registration of the name "victim" under an id.
func victimMesh(t *testing.T) (info EdgeInfo, ctx context.Context,
	dialKey func(transport.PrivateKey) *mxp.Conn, register func(*mxp.Conn, string) error) {
	t.Helper()
	info, err := readEdgeInfo(startDev(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	edgeKey, err := transport.ParsePublicKey(info.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	dialKey = func(key transport.PrivateKey) *mxp.Conn {
		c, err := mxp.Dial(ctx, info.EdgeAddr, mxp.Options{PrivateKey: key, ServerKey: edgeKey})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	register = func(c *mxp.Conn, id string) error {
		_, err := c.Register(ctx, mxp.RegisterRequest{ID: mustID(id), Name: "victim",
			Capabilities: []string{"echo"}, Metadata: mxp.AgentMetadata{Version: "1.0.0"}})
		return err
	}
	return info, ctx, dialKey, register
}
