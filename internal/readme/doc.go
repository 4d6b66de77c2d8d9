// Package readme reads sections of the repository's README.md, for tests
// that keep the documentation in step with the code.
package readme
