// Package bird talks to BIRD's control socket with a deadline on every call:
// it parses replies, reads `show protocols` and enables or disables
// protocols; and it tells when BIRD may have restarted or reloaded (its
// socket created, its configuration file opened), without asking it.
package bird
