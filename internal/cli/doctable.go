package cli

import (
	"flag"
	"reflect"
	"strings"
)

// flagDoc is one flag of a command as the man page and the shell
// completions present it: the same FlagSet that parses the command line and
// prints --help.
type flagDoc struct {
	Name    string // without dashes
	Arg     string // name of the value ("path", "duration"); "" for a bool flag
	Usage   string // usage text with the backquotes removed
	Default string // "" when the default is the zero value
}

// Completes reports how a shell completes the flag's value: "file", "dir"
// or "" (nothing to offer).
func (f flagDoc) Completes() string {
	switch f.Arg {
	case "path", "file":
		return "file"
	case "dir", "directory":
		return "dir"
	}
	return ""
}

// flagDocs returns c's flags sorted by name.
func flagDocs(c *Command) []flagDoc {
	fs, _ := c.FlagSet()
	var out []flagDoc
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		if isBool(f) {
			arg = ""
		}
		d := flagDoc{Name: f.Name, Arg: arg, Usage: usage}
		if !isZeroValue(f) {
			d.Default = f.DefValue
		}
		out = append(out, d)
	})
	return out
}

func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// isZeroValue reports whether f's default is its type's zero value, which
// --help (flag.PrintDefaults) does not print either.
func isZeroValue(f *flag.Flag) (zero bool) {
	t := reflect.TypeOf(f.Value)
	var z reflect.Value
	if t.Kind() == reflect.Pointer {
		z = reflect.New(t.Elem())
	} else {
		z = reflect.Zero(t)
	}
	v, ok := z.Interface().(flag.Value)
	if !ok {
		return f.DefValue == ""
	}
	defer func() { // a Value whose String panics on its zero value
		if recover() != nil {
			zero = false
		}
	}()
	return f.DefValue == v.String()
}

// argChoices returns the literal alternatives of an Args synopsis such as
// "bash|zsh", or nil when Args names a placeholder ("[SERVICE...]").
func argChoices(args string) []string {
	if args == "" || strings.ContainsAny(args, "[]. ") || strings.ToLower(args) != args {
		return nil
	}
	return strings.Split(args, "|")
}
