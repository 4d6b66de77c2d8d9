// Package hook runs an operator's command on every transition of a
// service, in the background, with a timeout.
package hook
