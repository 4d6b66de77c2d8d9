// Package tick puts wgbird's periodic work on one clock grid, so that one
// wake-up of the process serves every periodic task due then.
package tick
