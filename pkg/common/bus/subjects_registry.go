package bus

// Registry subjects (services/registry). Request/reply bodies are the JSON payloads of
// DESIGN.md's ecosystem conventions; events carry the agent record that changed.
const (
	// SubjectRegistryRegister registers or updates an agent:
	// {"id","name","capabilities","address","metadata"} → {"success","agent_id","message"}.
	SubjectRegistryRegister = "mxp.registry.register"
	// SubjectRegistryHeartbeat renews an agent's lease:
	// {"agent_id","metadata"?} → {"success","needs_register","agent_id","timestamp","message"}.
	SubjectRegistryHeartbeat = "mxp.registry.heartbeat"
	// SubjectRegistryDeregister removes an agent: {"agent_id"} → {"success","agent_id","message"}.
	SubjectRegistryDeregister = "mxp.registry.deregister"
	// SubjectRegistryDiscover finds agents by capability, name prefix and tag.
	SubjectRegistryDiscover = "mxp.registry.discover"

	// SubjectRegistryEvents is the wildcard that matches every registry event.
	SubjectRegistryEvents = "mxp.registry.events.>"
	// SubjectRegistryRegistered is published when an agent registers for the first time
	// or re-registers with changed details.
	SubjectRegistryRegistered = "mxp.registry.events.registered"
	// SubjectRegistryDeregistered is published when an agent deregisters.
	SubjectRegistryDeregistered = "mxp.registry.events.deregistered"
	// SubjectRegistryExpired is published when an agent's lease ends without a heartbeat.
	SubjectRegistryExpired = "mxp.registry.events.expired"
	// SubjectRegistryLifecycle is published when a heartbeat changes the lifecycle state
	// an agent reports (e.g. active → suspended) or first reports it takes no calls.
	SubjectRegistryLifecycle = "mxp.registry.events.lifecycle"
)
