//go:build kernelwg

package wgtest

// kernelOnly: built with the tag kernelwg (make kernel-test's guest), a
// device must be kernel WireGuard, and wireguard-go is never needed.
const kernelOnly = true
