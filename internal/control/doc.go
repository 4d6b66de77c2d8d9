// Package control serves wgbird's JSON API on a unix socket (status, drain,
// undrain, peers), keeps operators' drains on disk, and is the client the
// CLI uses to talk to a running wgbird.
package control
