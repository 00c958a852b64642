package agent

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Stats is a snapshot of what an agent has done since Run started.
type Stats struct {
	State         State
	Registered    bool   // the registry holds a current registration
	Registrations uint64 // successful registrations (1 + re-registrations)
	Heartbeats    uint64 // successful heartbeats
	RegistryFails uint64 // failed register or heartbeat attempts
	Handlers      DispatcherStats
}

// Stats returns the agent's counters; they are zero before Run.
func (a *Agent) Stats() Stats {
	st := Stats{State: a.lc.State()}
	if d := a.disp.Load(); d != nil {
		st.Handlers = d.Stats()
	}
	if r := a.reg.Load(); r != nil {
		st.Registered = r.registered.Load()
		st.Registrations = r.registers.Load()
		st.Heartbeats = r.heartbeats.Load()
		st.RegistryFails = r.failures.Load()
	}
	return st
}

// Collector exports the agent's Stats as Prometheus metrics (prefix mxp_agent_, labelled
// with the agent's name and id). Register it with any prometheus.Registerer.
func (a *Agent) Collector() prometheus.Collector { return &collector{a: a} }

type collector struct{ a *Agent }

var (
	labels         = []string{"agent", "agent_id"}
	descState      = prometheus.NewDesc("mxp_agent_state", "Lifecycle state: 0 init, 1 ready, 2 active, 3 suspended, 4 retiring, 5 terminated.", labels, nil)
	descRegistered = prometheus.NewDesc("mxp_agent_registered", "1 while the registry holds a current registration.", labels, nil)
	descRegs       = prometheus.NewDesc("mxp_agent_registrations_total", "Successful registrations.", labels, nil)
	descBeats      = prometheus.NewDesc("mxp_agent_heartbeats_total", "Successful heartbeats.", labels, nil)
	descRegFails   = prometheus.NewDesc("mxp_agent_registry_failures_total", "Failed register or heartbeat attempts.", labels, nil)
	descMessages   = prometheus.NewDesc("mxp_agent_messages_total", "Inbound messages by outcome.", append(labels, "outcome"), nil)
	descSendErrors = prometheus.NewDesc("mxp_agent_send_errors_total", "Replies that could not be sent.", labels, nil)
	descQueued     = prometheus.NewDesc("mxp_agent_dispatch_queued", "Accepted messages waiting for a handler worker now (the dispatcher queue's depth; at most Config.QueueSize).", labels, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descState, descRegistered, descRegs, descBeats, descRegFails, descMessages, descSendErrors, descQueued} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.a.Stats()
	lv := []string{c.a.cfg.Name, c.a.cfg.ID}
	registered := 0.0
	if st.Registered {
		registered = 1
	}
	ch <- prometheus.MustNewConstMetric(descState, prometheus.GaugeValue, float64(st.State), lv...)
	ch <- prometheus.MustNewConstMetric(descRegistered, prometheus.GaugeValue, registered, lv...)
	ch <- prometheus.MustNewConstMetric(descRegs, prometheus.CounterValue, float64(st.Registrations), lv...)
	ch <- prometheus.MustNewConstMetric(descBeats, prometheus.CounterValue, float64(st.Heartbeats), lv...)
	ch <- prometheus.MustNewConstMetric(descRegFails, prometheus.CounterValue, float64(st.RegistryFails), lv...)
	h := st.Handlers
	for _, o := range []struct {
		name string
		v    uint64
	}{{"completed", h.Completed}, {"failed", h.Failed}, {"panicked", h.Panics}, {"overloaded", h.Overloaded}, {"refused", h.Refused}, {"stray_error", h.Stray}} {
		ch <- prometheus.MustNewConstMetric(descMessages, prometheus.CounterValue, float64(o.v), append(lv, o.name)...)
	}
	ch <- prometheus.MustNewConstMetric(descSendErrors, prometheus.CounterValue, float64(h.SendErrors), lv...)
	ch <- prometheus.MustNewConstMetric(descQueued, prometheus.GaugeValue, float64(h.Queued), lv...)
}
