package inference

import (
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	api "github.com/mxp-mesh/mesh/pkg/api/inference"
	"github.com/mxp-mesh/mesh/pkg/common/resilience"
	"github.com/mxp-mesh/mesh/services/inference/provider"
	"github.com/sony/gobreaker/v2"
)

// providerState is one enabled provider: its adapter, concurrency limit and breakers.
// It survives a config reload when the provider's config did not change.
type providerState struct {
	name    string
	kind    string
	cfg     ProviderConfig
	adapter api.ModelAdapter
	res     Resilience
	sem     chan struct{}

	mu       sync.Mutex
	breakers map[string]*gobreaker.TwoStepCircuitBreaker[struct{}]
	// open counts the model names that reached this provider through a prefix route
	// (names the clients choose), up to MaxOpenModels; see target.
	open map[string]struct{}
}

// MaxOpenModels bounds how many model names that are not in the config (routed by a
// prefix such as gpt-*) each provider tracks with a metric label and a circuit breaker
// of their own. Names are chosen by clients, so without a bound a client could grow the
// metrics and the breaker table without end. Names past it are still served, counted
// and broken under the shared name OtherModels.
const (
	MaxOpenModels = 256
	OtherModels   = "_other"
)

// target is one resolved model: where a request goes and with which settings.
type target struct {
	name     string // model name as requested or configured
	upstream string // the provider's model name
	// label names the model in metrics and breakerKey picks its breaker: name and
	// upstream, or OtherModels for prefix-routed names past MaxOpenModels.
	label      string
	breakerKey string
	prov       *providerState
	model      ModelConfig
	res        Resilience
}

type prefixRoute struct {
	prefix string
	prov   *providerState
	strip  bool
}

// routes is an immutable snapshot of the routing table; a reload swaps it atomically.
type routes struct {
	cfg       Config
	providers map[string]*providerState
	prefixes  []prefixRoute
	// named holds every model name the config mentions (models, aliases and their
	// targets, the default and summary models, fallbacks): those keep their own metric
	// label and breaker however many names clients send (see MaxOpenModels).
	named map[string]bool
}

func buildRoutes(cfg Config, deps *Deps, m *metrics, old *routes) (*routes, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base := cfg.Resilience.merge(DefaultResilience)
	r := &routes{cfg: cfg, providers: map[string]*providerState{}, named: configNames(cfg)}
	names := make([]string, 0, len(cfg.Providers))
	for name := range cfg.Providers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		pc := cfg.Providers[name]
		kind := pc.Kind
		if kind == "" {
			kind = name
		}
		if old != nil {
			if ps, ok := old.providers[name]; ok && reflect.DeepEqual(ps.cfg, pc) && ps.res == pc.Resilience.merge(base) {
				r.providers[name] = ps
				r.addPrefixes(ps)
				continue
			}
		}
		adapter := deps.Adapters[name]
		if adapter == nil {
			var err error
			if adapter, err = newAdapter(kind, pc, deps); err != nil {
				return nil, err
			}
		}
		res := pc.Resilience.merge(base)
		ps := &providerState{name: name, kind: kind, cfg: pc, adapter: adapter, res: res,
			sem: make(chan struct{}, res.MaxConcurrency), breakers: map[string]*gobreaker.TwoStepCircuitBreaker[struct{}]{},
			open: map[string]struct{}{}}
		r.providers[name] = ps
		r.addPrefixes(ps)
	}
	sort.SliceStable(r.prefixes, func(i, j int) bool { return len(r.prefixes[i].prefix) > len(r.prefixes[j].prefix) })
	return r, nil
}

// configNames is every model name cfg mentions.
func configNames(cfg Config) map[string]bool {
	named := map[string]bool{cfg.DefaultModel: true, cfg.SummaryModel: true}
	for name, mc := range cfg.Models {
		named[name] = true
		for _, fb := range mc.Fallbacks {
			named[fb] = true
		}
	}
	for alias, to := range cfg.Aliases {
		named[alias], named[to] = true, true
	}
	delete(named, "")
	return named
}

func (r *routes) addPrefixes(ps *providerState) {
	prefixes := ps.cfg.Prefixes
	if len(prefixes) == 0 {
		prefixes = DefaultPrefixes[ps.kind]
	}
	for _, p := range prefixes {
		r.prefixes = append(r.prefixes, prefixRoute{prefix: p, prov: ps, strip: strings.HasSuffix(p, "/")})
	}
}

func newAdapter(kind string, pc ProviderConfig, deps *Deps) (api.ModelAdapter, error) {
	hc := provider.HTTPConfig{BaseURL: pc.BaseURL, APIKey: pc.APIKey.Reveal(), Client: deps.HTTPClient}
	switch kind {
	case KindOpenAI:
		return provider.NewOpenAI(hc), nil
	case KindAnthropic:
		return provider.NewAnthropic(hc), nil
	case KindGemini:
		return provider.NewGemini(hc), nil
	case KindOllama:
		return provider.NewOllama(hc), nil
	case KindMock:
		return &provider.Mock{TokenDelay: pc.TokenDelay}, nil
	case KindMxp:
		return NewHosted(deps.Conn, 0), nil
	}
	return nil, fmt.Errorf("inference: unknown provider kind %q", kind)
}

// resolve maps a model name (or alias) to a target.
func (r *routes) resolve(name string) (*target, error) {
	if name == "" {
		name = r.cfg.DefaultModel
	}
	for i := 0; i < 16; i++ {
		next, ok := r.cfg.Aliases[name]
		if !ok {
			break
		}
		name = next
	}
	if mc, ok := r.cfg.Models[name]; ok && mc.Provider != "" {
		ps, ok := r.providers[mc.Provider]
		if !ok {
			msg := fmt.Sprintf("model %q is on provider %q, which is not enabled", name, mc.Provider)
			if env := enablingEnv(mc.Provider); env != "" {
				msg += fmt.Sprintf(" (set %s to enable it)", env)
			}
			return nil, &provider.Error{Code: provider.CodeModelNotFound, Model: name, Message: msg}
		}
		return r.target(name, mc, ps, mc.Upstream, true), nil
	}
	for _, p := range r.prefixes {
		if strings.HasPrefix(name, p.prefix) {
			upstream := name
			if p.strip {
				upstream = strings.TrimPrefix(name, p.prefix)
			}
			return r.target(name, r.cfg.Models[name], p.prov, upstream, r.named[name]), nil
		}
	}
	return nil, &provider.Error{Code: provider.CodeModelNotFound, Model: name, Message: r.notServed(name)}
}

// notServed says why no provider serves model name and what would: the variable that
// enables the provider kind whose default prefixes match the name (the longest match), or
// else the models and prefixes that are served.
func (r *routes) notServed(name string) string {
	kind, best := "", 0
	for k, prefixes := range DefaultPrefixes {
		for _, p := range prefixes {
			if strings.HasPrefix(name, p) && len(p) > best && enablingEnv(k) != "" {
				kind, best = k, len(p)
			}
		}
	}
	if kind != "" {
		return fmt.Sprintf("no enabled provider serves model %q: set %s to enable the %s provider", name, enablingEnv(kind), kind)
	}
	served := make([]string, 0, len(r.cfg.Models)+len(r.prefixes))
	for m, mc := range r.cfg.Models {
		if _, ok := r.providers[mc.Provider]; ok {
			served = append(served, m)
		}
	}
	for _, p := range r.prefixes {
		served = append(served, p.prefix+"*")
	}
	sort.Strings(served)
	served = slices.Compact(served)
	return fmt.Sprintf("no enabled provider serves model %q (served: %s)", name, strings.Join(served, ", "))
}

func (r *routes) target(name string, mc ModelConfig, ps *providerState, upstream string, configured bool) *target {
	if upstream == "" {
		upstream = mc.Upstream
	}
	if upstream == "" {
		upstream = name
	}
	t := &target{name: name, upstream: upstream, label: name, breakerKey: upstream, prov: ps, model: mc,
		res: mc.Resilience.merge(ps.res)}
	if !configured && !ps.admit(name) {
		t.label, t.breakerKey = OtherModels, OtherModels
	}
	return t
}

// admit reports whether a model name from a prefix route gets its own label and
// breaker: it has been seen before, or fewer than MaxOpenModels names have.
func (ps *providerState) admit(name string) bool {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if _, ok := ps.open[name]; ok {
		return true
	}
	if len(ps.open) >= MaxOpenModels {
		return false
	}
	ps.open[name] = struct{}{}
	return true
}

// chain resolves a model and its fallbacks, in order, skipping duplicates and fallbacks
// that resolve to nothing (they are reported when the primary does not resolve).
func (r *routes) chain(name string) ([]*target, error) {
	first, err := r.resolve(name)
	if err != nil {
		return nil, err
	}
	out := []*target{first}
	seen := map[string]bool{first.prov.name + "/" + first.upstream: true}
	for _, fb := range first.model.Fallbacks {
		t, err := r.resolve(fb)
		if err != nil {
			continue
		}
		key := t.prov.name + "/" + t.upstream
		if !seen[key] {
			seen[key] = true
			out = append(out, t)
		}
	}
	return out, nil
}

// breaker returns the circuit breaker of t's provider and model, creating it on first use.
func (t *target) breaker(m *metrics) *gobreaker.TwoStepCircuitBreaker[struct{}] {
	ps := t.prov
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if cb, ok := ps.breakers[t.breakerKey]; ok {
		return cb
	}
	bc := t.res.Breaker
	provName, model := ps.name, t.label
	cb := resilience.NewTwoStepBreaker[struct{}](provName+"/"+model, resilience.BreakerSettings{
		ConsecutiveFailures: bc.ConsecutiveFailures,
		FailureRate:         bc.FailureRate,
		MinRequests:         bc.MinRequests,
		Interval:            bc.Interval,
		OpenTimeout:         bc.OpenTimeout,
		HalfOpenRequests:    bc.HalfOpenRequests,
		OnStateChange: func(_ string, from, to gobreaker.State) {
			m.breaker.WithLabelValues(provName, model).Set(float64(breakerLevel(to)))
			m.transitions.WithLabelValues(provName, model, from.String(), to.String()).Inc()
		},
		// Failures the provider is not to blame for do not count against it.
		IsSuccessful: func(err error) bool {
			switch provider.CodeOf(err) {
			case "", provider.CodeInvalidRequest, provider.CodeContextOverflow, provider.CodeContentFiltered,
				provider.CodeModelNotFound:
				return true
			}
			return false
		},
		IsExcluded: func(err error) bool { return provider.CodeOf(err) == provider.CodeCanceled },
	})
	m.breaker.WithLabelValues(provName, model).Set(0)
	ps.breakers[t.breakerKey] = cb
	return cb
}

func breakerLevel(s gobreaker.State) int {
	switch s {
	case gobreaker.StateHalfOpen:
		return 1
	case gobreaker.StateOpen:
		return 2
	}
	return 0
}

// BreakerStatus is one breaker's state, for /readyz detail.
type BreakerStatus struct {
	Provider            string `json:"provider"`
	Model               string `json:"model"`
	State               string `json:"state"`
	ConsecutiveFailures uint32 `json:"consecutive_failures"`
}

func (r *routes) breakerStatus() []BreakerStatus {
	var out []BreakerStatus
	for _, ps := range r.providers {
		ps.mu.Lock()
		for model, cb := range ps.breakers {
			out = append(out, BreakerStatus{Provider: ps.name, Model: model, State: cb.State().String(),
				ConsecutiveFailures: cb.Counts().ConsecutiveFailures})
		}
		ps.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Provider != out[j].Provider {
			return out[i].Provider < out[j].Provider
		}
		return out[i].Model < out[j].Model
	})
	return out
}
