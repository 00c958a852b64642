// Package config loads a service's typed configuration in layers — the struct's defaults,
// a YAML file, MXP_<SERVICE>_* environment variables, then command-line flags, each layer
// overriding the one before — validates it with errors that name the bad key and where it
// came from, computes a SHA-256 digest of the effective config with secrets excluded, and
// hot-reloads it (Watcher) on file change and SIGHUP.
//
// Keys: a field's key is its yaml tag name; nested structs join keys with dots
// ("http.addr"). The environment variable for a key is MXP_<SERVICE>_<KEY> with dots
// turned into underscores and upper-cased (MXP_REGISTRY_HTTP_ADDR). A field tagged
// `flag:"name" usage:"..."` is also a flag (--name). A field or struct tagged
// `reload:"live"` may change on reload; any other change needs a restart and is kept at
// its running value (the reload reports which keys were held back).
//
// Maps with string keys (map[string]V, e.g. named providers) are set in the file only:
// the file's entries merge by key into the defaults' map, each entry replacing the
// default of that name whole, and V is decoded by the same strict rules (an unknown key
// inside an entry is an error naming "map.entry.field"). Lists of scalars or
// text-unmarshalable values (security.Secret) come from YAML lists, or from the
// environment and flags as comma-separated values.
//
// It must not know any service's fields and must not log secret values (use
// security.Secret for them: the digest and every printout see only "[REDACTED]").
package config
