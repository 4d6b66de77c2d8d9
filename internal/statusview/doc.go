// Package statusview renders services' status as the table that
// `wgbird status` and `wgbird check` print, without any I/O of its own.
package statusview
