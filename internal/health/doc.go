// Package health decides, without any I/O, whether a service should be
// announced, from its check results, its drain state and its rise/fall
// thresholds.
package health
