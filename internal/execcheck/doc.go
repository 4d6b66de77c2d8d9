// Package execcheck runs an operator's command as a health check, with a
// timeout that kills the command's whole process group.
package execcheck
