// Package api defines the JSON of wgbird's control API (`wgbird status
// --json`, drain, undrain, peers) as plain types that import nothing of
// wgbird: the daemon produces them, the control socket serves them, and
// the CLI and status table read them.
package api
