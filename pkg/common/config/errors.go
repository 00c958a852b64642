package config

import "fmt"

// Error is a configuration error naming the bad key and the layer it came from.
type Error struct {
	Key    string // dotted key, e.g. "http.addr"
	Source string // "default", "file path:line", "env NAME", "flag --name", "validation"
	Err    error
}

func (e *Error) Error() string {
	if e.Key == "" {
		return fmt.Sprintf("config (%s): %v", e.Source, e.Err)
	}
	return fmt.Sprintf("config: %s (%s): %v", e.Key, e.Source, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// FieldError is what a Validate method returns to name the bad key.
func FieldError(key string, format string, args ...any) error {
	return &Error{Key: key, Source: "validation", Err: fmt.Errorf(format, args...)}
}

// Validator is implemented by config structs that check themselves after loading.
// Return FieldError (or errors.Join of several) to name the bad keys.
type Validator interface {
	Validate() error
}
