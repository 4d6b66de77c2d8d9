package config

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"

	toml "github.com/pelletier/go-toml/v2"
)

// document is the file as go-toml decodes it: one struct per table; the
// toml tags are the schema (and, in order, the known keys an unknown-key
// error lists). Whether a key is set is read from the positions, so a
// value equal to the zero value still counts as written.
type document struct {
	BIRD struct {
		Socket  string   `toml:"socket"`
		Timeout duration `toml:"timeout"`
	} `toml:"bird"`
	Control struct {
		Socket     string `toml:"socket"`
		Group      string `toml:"group"`
		StateDir   string `toml:"state_dir"`
		RuntimeDir string `toml:"runtime_dir"`
	} `toml:"control"`
	Shutdown struct {
		Delay            duration `toml:"delay"`
		OnSystemShutdown string   `toml:"on_system_shutdown"`
		OnStop           string   `toml:"on_stop"`
	} `toml:"shutdown"`
	Metrics struct {
		Listen string `toml:"listen"`
	} `toml:"metrics"`
	Hook struct {
		Command []string `toml:"command"`
		Timeout duration `toml:"timeout"`
	} `toml:"hook"`
	Service []fileService `toml:"service"`
}

type fileService struct {
	Name             string     `toml:"name"`
	Interface        string     `toml:"interface"`
	VIPs             []string   `toml:"vips"`
	Protocols        []string   `toml:"protocols"`
	Interval         duration   `toml:"interval"`
	FastInterval     duration   `toml:"fast_interval"`
	LivenessInterval duration   `toml:"liveness_interval"`
	Timeout          duration   `toml:"timeout"`
	Rise             int        `toml:"rise"`
	Fall             int        `toml:"fall"`
	ListenPort       int        `toml:"listen_port"`
	MinPeers         int        `toml:"min_peers"`
	MaxHandshakeAge  duration   `toml:"max_handshake_age"`
	QuietPeriod      duration   `toml:"quiet_period"`
	VIPSource        bool       `toml:"vip_source"`
	VIPSourceTable   int        `toml:"vip_source_table"`
	Takeover         bool       `toml:"takeover"`
	Group            []string   `toml:"group"`
	GroupPort        int        `toml:"group_port"`
	GroupSecretFile  string     `toml:"group_secret_file"`
	Exec             []fileExec `toml:"exec"`
	Probe            *fileProbe `toml:"probe"`
}

type fileExec struct {
	Name    string   `toml:"name"`
	Command []string `toml:"command"`
	Timeout duration `toml:"timeout"`
}

type fileProbe struct {
	PrivateKeyFile   string   `toml:"private_key_file"`
	PresharedKeyFile string   `toml:"preshared_key_file"`
	ServerPublicKey  string   `toml:"server_public_key"`
	Endpoint         string   `toml:"endpoint"`
	Timeout          duration `toml:"timeout"`
}

// duration is a Go duration string ("250ms", "2s", "1m30s").
type duration struct{ d time.Duration }

const durationSyntax = `(want Go syntax such as "250ms", "2s" or "1m30s")`

// UnmarshalText implements encoding.TextUnmarshaler.
func (d *duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("invalid duration %q %s", b, durationSyntax)
	}
	d.d = v
	return nil
}

// Parse parses and validates a configuration. name is only used in
// errors.
func Parse(name string, data []byte) (*Config, error) {
	pos, perr := positions(data)
	var f document
	dec := toml.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	v := &validator{file: name, pos: pos}
	if err := dec.Decode(&f); err != nil {
		if e := v.decodeError(err); e != nil {
			return nil, e
		}
	}
	if perr != nil {
		// go-toml accepted what its own parser refused when walked:
		// should not happen, but never let it through.
		return nil, &Error{File: name, Line: perr.line, Msg: "invalid TOML: " + perr.msg}
	}
	v.checkTypes()
	if err := v.first(); err != nil {
		return nil, err
	}
	cfg := v.config(&f)
	if err := v.first(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// decodeError records the unknown keys and bad values of go-toml's
// error, and returns the error itself when the TOML is invalid. Values of
// the wrong type are left to checkTypes, which names them the same way
// whatever go-toml did with them.
func (v *validator) decodeError(err error) *Error {
	var se *toml.StrictMissingError
	if errors.As(err, &se) && len(se.Errors) > 0 {
		// Only the first in the file is reported, and resolving a key
		// costs a pass over the positions: resolve that one alone.
		first, line := se.Errors[0], 0
		for i, e := range se.Errors {
			if l, _ := e.Position(); i == 0 || l < line {
				first, line = e, l
			}
		}
		path := v.pos.keyAt(line, first.Key())
		for p := parent(path); p != "" && typeAt(p) == nil; p = parent(p) {
			path = p // the first unknown component
		}
		v.errorf(path, "unknown key (known keys: %s)", strings.Join(keysOf(typeAt(parent(path))), ", "))
		return nil
	}
	var de *toml.DecodeError
	if !errors.As(err, &de) {
		return nil // a value of the wrong type given to UnmarshalText
	}
	line, col := de.Position()
	msg := strings.TrimPrefix(de.Error(), "toml: ")
	if len(de.Key()) == 0 {
		return &Error{File: v.file, Line: line, Msg: fmt.Sprintf("invalid TOML at column %d: %s", col, msg)}
	}
	path := v.pos.keyAt(line, de.Key())
	switch t := typeAt(path); {
	case t != nil && wantKind(t) != v.pos.kind(path):
		return nil // checkTypes reports it
	case t == reflect.TypeFor[duration]() && strings.HasPrefix(msg, "invalid duration "):
		v.errs = append(v.errs, &Error{File: v.file, Line: line, Key: path, Msg: msg})
		return nil
	}
	return &Error{File: v.file, Line: line, Key: path, Msg: "invalid TOML: " + msg}
}

// checkTypes reports every value whose TOML type the schema does not
// take, once, at its own line.
func (v *validator) checkTypes() {
	for _, e := range v.pos.entries {
		if e.kind == "" {
			continue
		}
		if t := typeAt(e.path); t != nil && wantKind(t) != e.kind {
			v.errorf(e.path, "must be %s, got %s", describe(t, e.path), e.kind)
		}
	}
}

// schema maps every path the document type knows, with array indices
// written "[]", to its type: "service[].exec[].timeout" → duration.
var schema = func() map[string]reflect.Type {
	m := map[string]reflect.Type{"": reflect.TypeFor[document]()}
	var walk func(path string, t reflect.Type)
	walk = func(path string, t reflect.Type) {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch {
		case t.Kind() == reflect.Slice:
			m[path+"[]"] = t.Elem()
			walk(path+"[]", t.Elem())
		case t.Kind() == reflect.Struct && t != reflect.TypeFor[duration]():
			for i := range t.NumField() {
				f := t.Field(i)
				k := join(path, f.Tag.Get("toml"))
				m[k] = f.Type
				walk(k, f.Type)
			}
		}
	}
	walk("", m[""])
	return m
}()

// typeAt returns the schema's type of path, nil for a key it does not
// know.
func typeAt(path string) reflect.Type {
	if !strings.Contains(path, "[") {
		return schema[path]
	}
	b := make([]byte, 0, len(path))
	for i := 0; i < len(path); i++ {
		b = append(b, path[i])
		if path[i] == '[' {
			for i+1 < len(path) && path[i+1] != ']' {
				i++
			}
		}
	}
	return schema[string(b)]
}

// keysOf lists the keys of a table type, in schema order.
func keysOf(t reflect.Type) []string {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	keys := make([]string, t.NumField())
	for i := range keys {
		keys[i] = t.Field(i).Tag.Get("toml")
	}
	return keys
}

// wantKind is the TOML type (as positions names it) that t takes.
func wantKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[duration](), t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Int:
		return "integer"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() == reflect.Slice:
		return "array"
	}
	return "table"
}

// describe says what a key of type t must be.
func describe(t reflect.Type, path string) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeFor[duration]():
		return `a duration string such as "2s"`
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Int:
		return "an integer"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.String:
		return "an array of strings"
	case t.Kind() == reflect.Slice:
		return fmt.Sprintf("an array of tables ([[%s]])", stripIndices(path))
	}
	return "a table"
}

// validator builds a Config from a decoded file, checking every value and
// the rules between them. It collects errors and reports the first one in
// the document.
type validator struct {
	file string
	pos  *positionMap
	errs []*Error
}

func (v *validator) errorf(key, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.file, Line: v.pos.line(key), Key: key, Msg: fmt.Sprintf(format, args...)})
}

// has reports whether key is written in the document.
func (v *validator) has(key string) bool {
	_, ok := v.pos.lines[key]
	return ok
}

// first returns the error on the earliest line; errors without a line come
// last; ties keep the order of detection.
func (v *validator) first() error {
	if len(v.errs) == 0 {
		return nil
	}
	sort.SliceStable(v.errs, func(i, j int) bool {
		li, lj := v.errs[i].Line, v.errs[j].Line
		if li == 0 || lj == 0 {
			return lj == 0 && li != 0
		}
		return li < lj
	})
	return v.errs[0]
}
