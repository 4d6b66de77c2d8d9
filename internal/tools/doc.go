// Package tools pins the build and lint tools in a module of their own, so
// the daemon's go.mod lists only what wgbird itself runs.
package tools
