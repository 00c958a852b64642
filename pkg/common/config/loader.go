package config

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/mxp-mesh/mesh/pkg/common/security"
)

// ClientVariables are environment variables that the mesh's clients read (the mxp CLI,
// the example agents) and whose names fall in a service's MXP_<SERVICE>_ namespace: the
// edge's public key a client pins, and where `mxp infer` finds the inference API. A
// loader leaves them alone instead of refusing them as unknown keys, so that a shell that
// points the clients at a mesh (the export lines of `make compose-up`) can also run one
// (`mxp dev` refused to start: "config (env MXP_EDGE_KEY): no such config key"). Only
// the check for unknown variables skips them: a config key of that name would still be
// set from it.
var ClientVariables = []string{"MXP_EDGE_KEY", "MXP_INFERENCE_URL"}

// Loader loads a config of type T (a struct) in layers. Set the fields, then call Load;
// the first Load parses Args, later Loads (reloads) reuse the flags parsed then.
type Loader[T any] struct {
	// Service names the env prefix (MXP_<SERVICE>_) and the flag set.
	Service string
	// Defaults returns the default config (the first layer).
	Defaults func() T
	// File is the YAML file to read; the --config flag and MXP_<SERVICE>_CONFIG override
	// it. Empty means no file.
	File string
	// Env is the environment, as os.Environ returns it. Nil means os.Environ() at each Load.
	Env []string
	// Args are the command-line arguments without the program name. Nil means none.
	Args []string
	// FlagSet receives the config flags; callers may add their own before Load. Nil means
	// a new ContinueOnError set named for the service.
	FlagSet *flag.FlagSet

	// Section, when set, reads the file as a mapping of sections (the file of a process
	// that runs several services, pkg/common/service.Process) and takes this service's
	// config from the top-level key Section; a file without it sets nothing. The
	// MXP_<SERVICE>_CONFIG variable is then not consulted: the process names the file.
	Section string
	// Skip lists top-level file keys that other loaders read (the other sections of a
	// shared file); they are not errors here. Without Section only.
	Skip []string
	// SectionIfPresent, when set, reads a file whose top level holds this key as a shared
	// file (Section) and any other file whole: a service binary given the file of a
	// process that runs several services takes its own section of it. No service has a
	// key named after itself, so the two shapes cannot be confused.
	SectionIfPresent string
	// Preset values (key → value, as in the environment) are laid over Defaults, under
	// the file: a program's own defaults (mxp dev's addresses). Override values are laid
	// over the environment, with the flags: a program's own flags that set a key.
	Preset, Override map[string]string

	parsed   bool
	flagVals map[string]string // key → raw value of flags that were set
	flagName map[string]string // key → flag name
	filePath string
}

type rawFlag struct {
	val    *string
	set    *bool
	isBool bool
}

func (r rawFlag) String() string {
	if r.val == nil {
		return ""
	}
	return *r.val
}
func (r rawFlag) Set(s string) error { *r.val, *r.set = s, true; return nil }
func (r rawFlag) IsBoolFlag() bool   { return r.isBool }

// FilePath is the YAML file the last Load read ("" for none).
func (l *Loader[T]) FilePath() string { return l.filePath }

func (l *Loader[T]) parseFlags(fields []field) error {
	if l.parsed {
		return nil
	}
	fs := l.FlagSet
	if fs == nil {
		fs = flag.NewFlagSet("mxp-"+l.Service, flag.ContinueOnError)
		l.FlagSet = fs
	}
	configPath := fs.String("config", "", "YAML config file (also MXP_"+strings.ToUpper(l.Service)+"_CONFIG)")
	type pending struct {
		key, name string
		val       *string
		set       *bool
	}
	var ps []pending
	for _, f := range fields {
		name := f.sf.Tag.Get("flag")
		if name == "" {
			continue
		}
		p := pending{key: f.key, name: name, val: new(string), set: new(bool)}
		usage := f.sf.Tag.Get("usage")
		if usage == "" {
			usage = f.key
		}
		usage += " (" + EnvName(l.Service, f.key) + ")"
		fs.Var(rawFlag{val: p.val, set: p.set, isBool: f.value.Kind() == reflect.Bool}, name, usage)
		ps = append(ps, p)
	}
	if err := fs.Parse(l.Args); err != nil {
		return err
	}
	l.flagVals = map[string]string{}
	l.flagName = map[string]string{}
	for _, p := range ps {
		if *p.set {
			l.flagVals[p.key] = *p.val
			l.flagName[p.key] = p.name
		}
	}
	if *configPath != "" {
		l.File = *configPath
	}
	l.parsed = true
	return nil
}

// Load builds the effective config: defaults, file, environment, flags, then Validate.
// A --help request returns flag.ErrHelp.
func (l *Loader[T]) Load() (T, error) {
	var cfg T
	if l.Defaults != nil {
		cfg = l.Defaults()
	}
	rv := reflect.ValueOf(&cfg).Elem()
	if rv.Kind() != reflect.Struct {
		return cfg, fmt.Errorf("config: %T is not a struct", cfg)
	}
	fields := leaves(rv, "", false)
	if err := l.parseFlags(fields); err != nil {
		return cfg, err
	}
	env := l.Env
	if env == nil {
		env = os.Environ()
	}
	envMap := map[string]string{}
	prefix := EnvName(l.Service, "")
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, prefix) {
			envMap[k] = v
		}
	}
	byKey := make(map[string]field, len(fields))
	for _, f := range fields {
		byKey[f.key] = f
	}
	if err := applyValues(byKey, l.Preset, "preset"); err != nil {
		return cfg, err
	}
	path := l.File
	if p, ok := envMap[prefix+"CONFIG"]; ok && p != "" && !l.fileFromFlag() && l.Section == "" {
		path = p
	}
	delete(envMap, prefix+"CONFIG")
	l.filePath = path
	if path != "" {
		section := l.Section
		if section == "" && l.SectionIfPresent != "" && fileHasKey(path, l.SectionIfPresent) {
			section = l.SectionIfPresent
		}
		if err := applyFile(rv, path, section, l.Skip); err != nil {
			return cfg, err
		}
	}
	var errs []error
	for _, f := range fields {
		name := EnvName(l.Service, f.key)
		if v, ok := envMap[name]; ok {
			delete(envMap, name)
			if err := setString(f.value, v); err != nil {
				errs = append(errs, &Error{Key: f.key, Source: "env " + name, Err: err})
			}
		}
	}
	for name := range envMap {
		if slices.Contains(ClientVariables, name) {
			continue
		}
		errs = append(errs, &Error{Source: "env " + name, Err: errors.New("no such config key")})
	}
	for _, f := range fields {
		if v, ok := l.flagVals[f.key]; ok {
			if err := setString(f.value, v); err != nil {
				errs = append(errs, &Error{Key: f.key, Source: "flag --" + l.flagName[f.key], Err: err})
			}
		}
	}
	if err := applyValues(byKey, l.Override, "override"); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return cfg, errors.Join(errs...)
	}
	if err := validate(&cfg); err != nil {
		return cfg, err
	}
	// Every secret of a loaded config is scrubbed from text leaving the mesh from now
	// on (security.Scrub), reloads included.
	security.RegisterSecretsIn(&cfg)
	return cfg, nil
}

func (l *Loader[T]) fileFromFlag() bool {
	if l.FlagSet == nil {
		return false
	}
	set := false
	l.FlagSet.Visit(func(f *flag.Flag) {
		if f.Name == "config" {
			set = true
		}
	})
	return set
}

func validate[T any](cfg *T) error {
	if v, ok := any(cfg).(Validator); ok {
		return v.Validate()
	}
	if v, ok := any(*cfg).(Validator); ok {
		return v.Validate()
	}
	return nil
}

// fileHasKey reports whether the YAML file at path is a mapping with the top-level key
// (false for any file that cannot be read or parsed: applyFile then reports why).
func fileHasKey(path, key string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return false
	}
	root := doc.Content[0]
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == key {
			return true
		}
	}
	return false
}

// applyValues sets each key of vals (raw values, parsed as the environment's are); an
// unknown key or a bad value is an error naming the key and source.
func applyValues(byKey map[string]field, vals map[string]string, source string) error {
	var errs []error
	for k, v := range vals {
		f, ok := byKey[k]
		if !ok {
			errs = append(errs, &Error{Key: k, Source: source, Err: errors.New("no such config key")})
			continue
		}
		if err := setString(f.value, v); err != nil {
			errs = append(errs, &Error{Key: k, Source: source, Err: err})
		}
	}
	return errors.Join(errs...)
}

// applyFile lays the YAML file at path over rv: the whole file, or with section set the
// value of that top-level key (the file must then be a mapping). Top-level keys in skip
// are left to other loaders.
func applyFile(rv reflect.Value, path, section string, skip []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return &Error{Source: "file " + path, Err: err}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return &Error{Source: "file " + path, Err: err}
	}
	if len(doc.Content) == 0 {
		return nil // empty file: nothing to override
	}
	root := doc.Content[0]
	if section != "" || len(skip) > 0 {
		if root.Kind != yaml.MappingNode {
			return &Error{Source: fmt.Sprintf("file %s:%d", path, root.Line), Err: errors.New("want a mapping of sections")}
		}
		var kept []*yaml.Node
		var found *yaml.Node
		for i := 0; i+1 < len(root.Content); i += 2 {
			k := root.Content[i].Value
			switch {
			case section != "" && k == section:
				found = root.Content[i+1]
			case section == "" && !slices.Contains(skip, k):
				kept = append(kept, root.Content[i], root.Content[i+1])
			}
		}
		if section != "" {
			if found == nil {
				return nil // no section for this service: nothing to override
			}
			root = found
		} else {
			root = &yaml.Node{Kind: yaml.MappingNode, Line: root.Line, Content: kept}
		}
	}
	var errs []error
	applyNode(root, rv, section, path, &errs) // errors name section.key
	return errors.Join(errs...)
}

func applyNode(n *yaml.Node, v reflect.Value, key, path string, errs *[]error) {
	src := fmt.Sprintf("file %s:%d", path, n.Line)
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if v.Kind() == reflect.Map {
		applyMap(n, v, key, path, errs)
		return
	}
	if !isLeaf(v.Type()) {
		if n.Kind != yaml.MappingNode {
			*errs = append(*errs, &Error{Key: key, Source: src, Err: errors.New("want a mapping")})
			return
		}
		byKey := map[string]int{}
		for i := 0; i < v.NumField(); i++ {
			if k := keyOf(v.Type().Field(i)); k != "" {
				byKey[k] = i
			}
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			full := k
			if key != "" {
				full = key + "." + k
			}
			idx, ok := byKey[k]
			if !ok {
				*errs = append(*errs, &Error{Key: full, Source: fmt.Sprintf("file %s:%d", path, n.Content[i].Line), Err: errors.New("no such config key")})
				continue
			}
			applyNode(n.Content[i+1], v.Field(idx), full, path, errs)
		}
		return
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if err := setString(v, n.Value); err != nil {
			*errs = append(*errs, &Error{Key: key, Source: src, Err: err})
		}
	case yaml.SequenceNode:
		if v.Kind() != reflect.Slice {
			*errs = append(*errs, &Error{Key: key, Source: src, Err: errors.New("want a single value, got a list")})
			return
		}
		items := make([]string, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				*errs = append(*errs, &Error{Key: key, Source: src, Err: errors.New("want a list of scalars")})
				return
			}
			items = append(items, c.Value)
		}
		sl := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, it := range items {
			if err := setString(sl.Index(i), it); err != nil {
				*errs = append(*errs, &Error{Key: key, Source: src, Err: err})
				return
			}
		}
		v.Set(sl)
	default:
		*errs = append(*errs, &Error{Key: key, Source: src, Err: errors.New("want a single value")})
	}
}

// applyMap lays a YAML mapping over the map v: entries merge by key into the map the
// earlier layers built (a copy: the defaults' map is never written), and each entry's
// value replaces the earlier one whole, decoded by the same rules as a top-level value
// (unknown keys inside it are errors that name the full key, map.entry.field).
func applyMap(n *yaml.Node, v reflect.Value, key, path string, errs *[]error) {
	src := fmt.Sprintf("file %s:%d", path, n.Line)
	if v.Type().Key().Kind() != reflect.String {
		*errs = append(*errs, &Error{Key: key, Source: src, Err: fmt.Errorf("unsupported map type %s", v.Type())})
		return
	}
	if n.Kind != yaml.MappingNode {
		*errs = append(*errs, &Error{Key: key, Source: src, Err: errors.New("want a mapping")})
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), v.Len()+len(n.Content)/2)
	iter := v.MapRange()
	for iter.Next() {
		m.SetMapIndex(iter.Key(), iter.Value())
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn := n.Content[i]
		if kn.Kind != yaml.ScalarNode {
			*errs = append(*errs, &Error{Key: key, Source: fmt.Sprintf("file %s:%d", path, kn.Line), Err: errors.New("want a scalar map key")})
			continue
		}
		full := kn.Value
		if key != "" {
			full = key + "." + kn.Value
		}
		elem := reflect.New(v.Type().Elem()).Elem()
		before := len(*errs)
		applyNode(n.Content[i+1], elem, full, path, errs)
		if len(*errs) == before {
			m.SetMapIndex(reflect.ValueOf(kn.Value).Convert(v.Type().Key()), elem)
		}
	}
	v.Set(m)
}

// Digest is the hex SHA-256 of cfg's JSON form. Secrets (security.Secret) marshal as
// "[REDACTED]", so the digest changes with every setting except secret values: two
// replicas with the same digest run the same configuration.
func Digest(cfg any) string {
	b, err := json.Marshal(cfg)
	if err != nil {
		return "unmarshalable:" + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Keys lists every key of T with its env variable, flag and whether it reloads live —
// the reference table printed by `--help` and written in docs/configuration.md.
func Keys[T any](service string) []KeyInfo {
	var zero T
	var out []KeyInfo
	for _, f := range leaves(reflect.ValueOf(&zero).Elem(), "", false) {
		out = append(out, KeyInfo{Key: f.key, Env: EnvName(service, f.key), Flag: f.sf.Tag.Get("flag"), Live: f.live, Usage: f.sf.Tag.Get("usage")})
	}
	return out
}

// KeyInfo describes one config key.
type KeyInfo struct {
	Key, Env, Flag, Usage string
	Live                  bool
}
