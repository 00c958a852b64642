package config

import (
	"encoding"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// field is one settable leaf of a config struct.
type field struct {
	key   string // dotted yaml key
	value reflect.Value
	sf    reflect.StructField
	live  bool
}

var (
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	durationType        = reflect.TypeFor[time.Duration]()
)

// keyOf returns a struct field's yaml key, or "" when the field is skipped.
func keyOf(sf reflect.StructField) string {
	if !sf.IsExported() {
		return ""
	}
	tag := sf.Tag.Get("yaml")
	name, _, _ := strings.Cut(tag, ",")
	if name == "-" {
		return ""
	}
	if name == "" {
		name = strings.ToLower(sf.Name)
	}
	return name
}

// isLeaf reports whether a value is set as one unit (not walked into).
func isLeaf(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(textUnmarshalerType) {
		return true
	}
	return t.Kind() != reflect.Struct
}

// leaves lists every settable leaf under v (a struct value), depth first.
func leaves(v reflect.Value, prefix string, live bool) []field {
	var out []field
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		k := keyOf(sf)
		if k == "" {
			continue
		}
		if prefix != "" {
			k = prefix + "." + k
		}
		l := live || sf.Tag.Get("reload") == "live"
		fv := v.Field(i)
		if isLeaf(sf.Type) {
			out = append(out, field{key: k, value: fv, sf: sf, live: l})
			continue
		}
		out = append(out, leaves(fv, k, l)...)
	}
	return out
}

// setString parses s into v according to v's type.
func setString(v reflect.Value, s string) error {
	if v.CanAddr() && v.Addr().Type().Implements(textUnmarshalerType) {
		return v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s))
	}
	if v.Type() == durationType {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 30s, 1m)", s)
		}
		v.SetInt(int64(d))
		return nil
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("%q is not a boolean", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(s), 0, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an integer of %d bits", s, v.Type().Bits())
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(strings.TrimSpace(s), 0, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not an unsigned integer of %d bits", s, v.Type().Bits())
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(strings.TrimSpace(s), v.Type().Bits())
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		v.SetFloat(f)
	case reflect.Slice:
		var items []string
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		sl := reflect.MakeSlice(v.Type(), len(items), len(items))
		for i, it := range items {
			if err := setString(sl.Index(i), it); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		v.Set(sl)
	case reflect.Map:
		return errors.New("a map is set in the config file only")
	default:
		return fmt.Errorf("unsupported type %s", v.Type())
	}
	return nil
}

// EnvName is the environment variable for key under service.
func EnvName(service, key string) string {
	r := strings.NewReplacer(".", "_", "-", "_")
	return "MXP_" + strings.ToUpper(r.Replace(service)) + "_" + strings.ToUpper(r.Replace(key))
}
