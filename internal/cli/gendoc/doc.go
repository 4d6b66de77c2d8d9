// Command gendoc writes wgbird's man page and shell completions from the
// command table, for packaging on a host of any architecture.
package main
