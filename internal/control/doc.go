// Package control serves wgbird's JSON API (internal/api) on a unix
// socket (status, drain, undrain, peers) and is the client the CLI uses
// to talk to a running wgbird.
package control
