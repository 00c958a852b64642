package main

import (
	"testing"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// TestPickByNameRefusesMixedOwners: resolution never picks a stranger silently.
func TestPickByNameRefusesMixedOwners(t *testing.T) {
	a := mustID("00000000-0000-4000-8000-000000000001")
	b := mustID("00000000-0000-4000-8000-000000000002")
	same := []mxp.AgentRecord{{ID: a, Name: "x", Owner: "key:A", Status: mxp.StatusOnline}, {ID: b, Name: "x", Owner: "key:A"}}
	if id, err := pickByName(same, "x"); err != nil || id != a {
		t.Fatalf("one owner: %v %v", id, err)
	}
	mixed := []mxp.AgentRecord{{ID: a, Name: "x", Owner: ""}, {ID: b, Name: "x", Owner: "key:A"}}
	if _, err := pickByName(mixed, "x"); err == nil {
		t.Fatal("a name with two owners resolved")
	}
	if _, err := pickByName(mixed, "y"); err == nil {
		t.Fatal("an unknown name resolved")
	}
}
