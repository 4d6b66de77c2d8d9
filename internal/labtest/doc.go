// Package labtest is the test support every lab-based package's
// integration tests share: TestMain's prerequisites (root, the lab's
// binaries) that skip, or fail loudly under CI=true, and the wgbird built
// once per test binary.
package labtest
