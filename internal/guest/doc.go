// Package guest boots Debian's cloud kernel, which has wireguard.ko, in
// qemu without KVM, runs static test binaries in it and reads their results
// from the guest's console: the tests against kernel WireGuard.
package guest
