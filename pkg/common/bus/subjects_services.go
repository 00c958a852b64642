package bus

import "github.com/mxp-mesh/mesh/pkg/mxp"

// ServiceCallSubjects is the routing table of the well-known services (pkg/mxp's service
// ids): for each service the mesh runs, the subject that answers a Call addressed to its
// id, keyed by the service's name (mxp.ServiceByName). It names only services that exist:
// the registry (a Call to it is a discovery) and inference (a chat completion). The ids
// pkg/mxp reserves for tools and policy have no entry until a service serves them; the
// edge answers a Call to them unreachable. The edge's `services` configuration starts
// from this table and may point a name at another subject. It returns a new map on each
// call.
func ServiceCallSubjects() map[string]string {
	return map[string]string{
		serviceName(mxp.ServiceRegistry):  SubjectRegistryDiscover,
		serviceName(mxp.ServiceInference): SubjectInferenceChat,
	}
}

func serviceName(id mxp.AgentID) string {
	name, _ := mxp.ServiceName(id)
	return name
}
