package bus

import (
	"testing"

	"github.com/mxp-mesh/mesh/pkg/mxp"
)

// TestServiceCallSubjects: the routing table names each service the mesh runs by its
// well-known name, with that service's own subject, and nothing for the ids no service
// serves (tools, policy), so no Call is routed to a subject nobody listens on.
func TestServiceCallSubjects(t *testing.T) {
	served := map[mxp.AgentID]string{mxp.ServiceRegistry: SubjectRegistryDiscover, mxp.ServiceInference: SubjectInferenceChat}
	got := ServiceCallSubjects()
	if len(got) != len(served) {
		t.Fatalf("table %v, want exactly the registry and inference", got)
	}
	for name, subj := range got {
		id, ok := mxp.ServiceByName(name)
		if !ok || served[id] != subj {
			t.Errorf("%q → %q: not a served service with its subject", name, subj)
		}
	}
	got["registry"] = "changed"
	if ServiceCallSubjects()["registry"] != SubjectRegistryDiscover {
		t.Error("the table is shared between callers")
	}
}
