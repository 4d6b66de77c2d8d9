//go:build !kernelwg

package wgtest

// kernelOnly: without the tag kernelwg, a device is kernel WireGuard when
// the module is there and wireguard-go otherwise.
const kernelOnly = false
