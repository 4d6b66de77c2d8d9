// Package check holds wgbird's health checks of a service behind one
// interface: a Check reports a health.Check, and a Spec declares when the
// daemon runs it (on every pass, on netlink events too, or in the
// background with its own period). Build makes a service's checks from
// its config.
//
// Adding a check kind touches three places: a file of its own here with
// a type that implements Check (it bounds its own run by a deadline, and
// sets the Name, Hard and Took of what it reports); a case in Build that
// makes it from the service's config with its policy; and the config key
// that turns it on (internal/config: a field in document and Service,
// and its rule in validate.go). The daemon needs no change: it runs
// every Spec by its policy, in the order Build returns them, feeds the
// results to the state machine and shows them in the status.
package check
