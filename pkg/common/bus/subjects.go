package bus

// Subjects of the mesh. Every subject a service listens on or publishes to is named in
// this package, one file per service (subjects_<service>.go), so the whole bus can be
// audited on a few pages and documented in docs/architecture.md.
//
// Naming: mxp.<service>.<verb> for request/reply endpoints (served through nats.go micro
// in a queue group, so replicas share the work) and mxp.<service>.events.<kind> for
// events (plain publish; every subscriber receives every event).

// SubjectPrefix is the root of every mesh subject.
const SubjectPrefix = "mxp"

// Queue groups: replicas of a service join the same group so each request is served once.
const (
	// QueueRegistry is the queue group of the registry's request/reply endpoints.
	QueueRegistry = "mxp-registry"
)
