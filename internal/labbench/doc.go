// Package labbench is the failover benchmark of `make bench`: it breaks a
// server of internal/lab's topology over and over, with wgbird and with
// the references (BIRD's socket alone, BIRD + BFD, ExaBGP's healthcheck),
// times the router's reaction and writes the figures into README.
package labbench
