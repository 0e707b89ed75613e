package recipes

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// tomlUnmarshaler is BurntSushi/toml's Unmarshaler, which Duration, Bytes
// and FileMode implement.
type tomlUnmarshaler interface{ UnmarshalTOML(any) error }

var tomlUnmarshalerType = reflect.TypeFor[tomlUnmarshaler]()

// decodeInto copies a TOML document (as decoded into map[string]any) into
// rv, recording every type mismatch and unknown key in p instead of
// stopping at the first, as toml.Decode into a struct would.
func decodeInto(v any, rv reflect.Value, path string, p *problems) {
	if rv.CanAddr() && rv.Addr().Type().Implements(tomlUnmarshalerType) {
		if err := rv.Addr().Interface().(tomlUnmarshaler).UnmarshalTOML(v); err != nil {
			p.typeErr(path, "%s", err)
		}
		return
	}
	switch rv.Kind() {
	case reflect.Pointer:
		e := reflect.New(rv.Type().Elem())
		decodeInto(v, e.Elem(), path, p)
		rv.Set(e)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			p.typeErr(path, "must be a table, not %s", tomlKind(v))
			return
		}
		fields := tomlFields(rv.Type())
		known := make([]string, 0, len(fields))
		for k := range fields {
			known = append(known, k)
		}
		for _, k := range sortedKeys(m) {
			i, ok := fields[k]
			if !ok {
				p.add(join(path, k), "unknown key %q%s", k, suggest(k, known))
				continue
			}
			decodeInto(m[k], rv.Field(i), join(path, k), p)
		}
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			p.typeErr(path, "must be a table, not %s", tomlKind(v))
			return
		}
		out := reflect.MakeMapWithSize(rv.Type(), len(m))
		for _, k := range sortedKeys(m) {
			e := reflect.New(rv.Type().Elem()).Elem()
			decodeInto(m[k], e, join(path, k), p)
			out.SetMapIndex(reflect.ValueOf(k), e)
		}
		rv.Set(out)
	case reflect.Slice:
		var items []any
		switch x := v.(type) {
		case []any:
			items = x
		case []map[string]any:
			for _, t := range x {
				items = append(items, t)
			}
		default:
			p.typeErr(path, "must be an array, not %s", tomlKind(v))
			return
		}
		out := reflect.MakeSlice(rv.Type(), len(items), len(items))
		for i, it := range items {
			decodeInto(it, out.Index(i), join(path, strconv.Itoa(i)), p)
		}
		rv.Set(out)
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			p.typeErr(path, "must be a string, not %s", tomlKind(v))
			return
		}
		rv.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			p.typeErr(path, "must be true or false, not %s", tomlKind(v))
			return
		}
		rv.SetBool(b)
	case reflect.Int, reflect.Int64, reflect.Int32:
		n, ok := v.(int64)
		if !ok {
			p.typeErr(path, "must be an integer, not %s", tomlKind(v))
			return
		}
		if rv.OverflowInt(n) {
			p.typeErr(path, "%d is out of range", n)
			return
		}
		rv.SetInt(n)
	case reflect.Float64:
		switch x := v.(type) {
		case int64:
			rv.SetFloat(float64(x))
		case float64:
			rv.SetFloat(x)
		default:
			p.typeErr(path, "must be a number, not %s", tomlKind(v))
		}
	case reflect.Interface:
		switch v.(type) {
		case string, int64, float64, bool:
			rv.Set(reflect.ValueOf(v))
		default:
			p.typeErr(path, "must be a string, a number or true/false, not %s", tomlKind(v))
		}
	default:
		p.typeErr(path, "cannot be decoded (internal: %s)", rv.Kind())
	}
}

// tomlFields maps toml tag names to field indexes.
func tomlFields(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("toml")
		if tag == "" || tag == "-" {
			continue
		}
		out[strings.Split(tag, ",")[0]] = i
	}
	return out
}

// tomlKind names the TOML type of v for messages.
func tomlKind(v any) string {
	switch x := v.(type) {
	case string:
		return fmt.Sprintf("a string (%q)", short(x))
	case int64:
		return fmt.Sprintf("an integer (%d)", x)
	case float64:
		return fmt.Sprintf("a float (%g)", x)
	case bool:
		return fmt.Sprintf("a boolean (%t)", x)
	case map[string]any:
		return "a table"
	case []any, []map[string]any:
		return "an array"
	case time.Time:
		return "a date"
	case nil:
		return "nothing"
	}
	return fmt.Sprintf("%T", v)
}

func short(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
