//go:build integration && !kernelwg

package lab

// kernelWireGuard: the integration tests' labs run wireguard-go.
const kernelWireGuard = false
