package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Version is set at link time: -ldflags "-X github.com/wgbird/wgbird/internal/cli.Version=v1.2.3".
var (
	Version = "dev"
	Commit  = ""
	Date    = ""
)

// Exit codes.
const (
	ExitOK        = 0
	ExitFailure   = 1 // the command ran and the answer is "no" (unhealthy, timed out)
	ExitConfig    = 2 // bad configuration or usage
	ExitNoService = 3 // wgbird's control socket did not answer
)

// exitError carries an exit code with the message printed for it.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func withCode(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// Command is one subcommand. Its Synopsis, Help and flags are the single
// source of --help and of the man page.
type Command struct {
	Name     string
	Args     string // argument synopsis after the flags, e.g. "[SERVICE...]"
	Synopsis string // one line
	Help     string // paragraphs
	Flags    func(fs *flag.FlagSet) any
	Run      func(ctx context.Context, env *Env, opts any, args []string) error
}

// Env is what a command may touch.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
}

var commands = map[string]*Command{}

func register(c *Command) { commands[c.Name] = c }

// Commands returns every subcommand sorted by name.
func Commands() []*Command {
	var out []*Command
	for _, c := range commands {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// FlagSet returns the parsed-options holder and flag set of c, for help
// and man page output.
func (c *Command) FlagSet() (*flag.FlagSet, any) {
	fs := flag.NewFlagSet("wgbird "+c.Name, flag.ContinueOnError)
	var opts any
	if c.Flags != nil {
		opts = c.Flags(fs)
	}
	return fs, opts
}

// Main runs the command line and returns the process exit code.
func Main(ctx context.Context, args []string, env *Env) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		if len(args) == 2 {
			if c, ok := commands[args[1]]; ok {
				usage(env.Stdout, c)
				return ExitOK
			}
		}
		Usage(env.Stdout)
		if len(args) == 0 {
			return ExitConfig
		}
		return ExitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(env.Stderr, "wgbird: unknown command %q; run 'wgbird help'\n", args[0])
		return ExitConfig
	}
	fs, opts := c.FlagSet()
	fs.SetOutput(io.Discard)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(env.Stdout, c)
			return ExitOK
		}
		fmt.Fprintf(env.Stderr, "wgbird %s: %v; run 'wgbird help %s'\n", c.Name, err, c.Name)
		return ExitConfig
	}
	err := c.Run(ctx, env, opts, fs.Args())
	if err == nil {
		return ExitOK
	}
	fmt.Fprintf(env.Stderr, "wgbird %s: %v\n", c.Name, err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return ExitFailure
}

// Usage prints the list of commands.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "wgbird withdraws a WireGuard server's BGP route through BIRD when WireGuard is unhealthy.\n\nUsage: wgbird COMMAND [FLAGS] [ARGS]\n\nCommands:\n")
	for _, c := range Commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.Name, c.Synopsis)
	}
	fmt.Fprintf(w, "\nRun 'wgbird help COMMAND' for a command's flags.\n")
}

func usage(w io.Writer, c *Command) {
	fmt.Fprintf(w, "Usage: wgbird %s [FLAGS] %s\n\n%s\n", c.Name, c.Args, c.Synopsis)
	if c.Help != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.Help))
	}
	fs, _ := c.FlagSet()
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintf(w, "\nFlags:\n")
		fs.SetOutput(w)
		fs.PrintDefaults()
	}
}

func init() {
	register(&Command{
		Name:     "version",
		Synopsis: "print the version",
		Run: func(_ context.Context, env *Env, _ any, _ []string) error {
			fmt.Fprintf(env.Stdout, "wgbird %s", Version)
			if Commit != "" {
				fmt.Fprintf(env.Stdout, " (commit %s", Commit)
				if Date != "" {
					fmt.Fprintf(env.Stdout, ", built %s", Date)
				}
				fmt.Fprint(env.Stdout, ")")
			}
			fmt.Fprintln(env.Stdout)
			return nil
		},
	})
}
