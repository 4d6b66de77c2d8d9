// Package inotify tells, from Linux's inotify, when a named file is opened
// or created, without polling: a Watcher waits in Go's netpoller.
package inotify
