// Package labsoak soaks a lab (internal/lab): fail/heal cycles in random
// modes judged by the router's kernel table and the clients' endpoints,
// and each wgbird's goroutines, fds, RSS and Go heap sampled to show a
// leak, for `wgbird-lab soak` and TestSoakShort.
package labsoak
