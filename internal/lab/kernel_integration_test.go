//go:build integration && kernelwg

package lab

// kernelWireGuard: built with the tag kernelwg (make kernel-test's guest),
// the shared lab's servers and client run kernel WireGuard, and
// TestFaultModes' failovers are judged by the router's table as with
// wireguard-go.
const kernelWireGuard = true
