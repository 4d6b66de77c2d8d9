// Package drain holds what a drain means: the store that keeps operators'
// drains on disk across restarts and reboots, their restore at start-up,
// and what `wgbird drain --wait` judges from the daemon (BIRD withdrawn,
// WireGuard traffic quiet), without I/O of its own beyond the store.
package drain
