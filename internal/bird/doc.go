// Package bird talks to BIRD's control socket with a deadline on every call:
// it parses replies, reads `show protocols` and enables or disables protocols.
package bird
