package security

import (
	"fmt"
	"log/slog"
)

// Redacted is what a Secret prints as, wherever it is printed.
const Redacted = "[REDACTED]"

// Secret is a string whose value is never printed: fmt verbs (%v, %+v, %#v, %s, %q, %x),
// JSON, YAML, text marshalling and slog all show Redacted. Reveal returns the value. The
// zero Secret is empty. Secrets load from config (YAML, environment, flags) through
// UnmarshalText.
type Secret struct {
	value string
}

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{value: v} }

// Reveal returns the secret value. Call it only where the value is used, never to log.
func (s Secret) Reveal() string { return s.value }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s.value != "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return `security.Secret("` + Redacted + `")` }

// Format implements fmt.Formatter so that every verb, including %x and %q, is redacted.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, s.GoString())
			return
		}
		fmt.Fprint(f, Redacted)
	case 'q':
		fmt.Fprintf(f, "%q", Redacted)
	default:
		fmt.Fprint(f, Redacted)
	}
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return Redacted, nil }

// UnmarshalText implements encoding.TextUnmarshaler (config files, environment, flags).
func (s *Secret) UnmarshalText(b []byte) error {
	s.value = string(b)
	return nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (s *Secret) UnmarshalJSON(b []byte) error {
	var v string
	if err := jsonUnmarshalString(b, &v); err != nil {
		return err
	}
	s.value = v
	return nil
}
