// Package cli implements wgbird's command line: one table of subcommands
// that serves parsing, --help and the man page.
package cli
